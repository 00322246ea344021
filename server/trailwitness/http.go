package trailwitness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/trailhq/trail/trailseal"
)

// HTTP is a witness reached over HTTP, e.g. a service run by someone other
// than the database's administrator (an auditor, another team, Handler on
// another machine). The protocol, for any receiver:
//
//	POST <URL>/<key>        body: the object (text/plain); 201 stored, 200 when the key
//	                        holds these bytes already, 409 when it holds others
//	GET  <URL>/<key>        the object; 404 when absent
//	GET  <URL>/?prefix=<p>  the keys under p, one per line, sorted
//
// Keys are trailseal's witness keys (checkpoints/<log>/…, heads/…).
type HTTP struct {
	URL    string // without a trailing slash
	Token  string // sent as a bearer token when set
	Client *http.Client
}

func (w *HTTP) String() string { return "witness " + w.URL }

func (w *HTTP) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (w *HTTP) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, w.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", w, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	if w.Token != "" {
		req.Header.Set("Authorization", "Bearer "+w.Token)
	}
	resp, err := w.client().Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", w, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", w, err)
	}
	return resp.StatusCode, b, nil
}

// Put implements trailseal.Witness.
func (w *HTTP) Put(ctx context.Context, key string, body []byte) error {
	code, msg, err := w.do(ctx, http.MethodPost, "/"+key, body)
	switch {
	case err != nil:
		return err
	case code == http.StatusCreated || code == http.StatusOK || code == http.StatusNoContent:
		return nil
	case code == http.StatusConflict:
		return fmt.Errorf("%w: %s %s", trailseal.ErrWitnessConflict, w, key)
	}
	return fmt.Errorf("%s: POST %s: %d %s", w, key, code, firstLine(msg))
}

// Get implements trailseal.WitnessReader.
func (w *HTTP) Get(ctx context.Context, key string) ([]byte, error) {
	code, b, err := w.do(ctx, http.MethodGet, "/"+key, nil)
	switch {
	case err != nil:
		return nil, err
	case code == http.StatusOK:
		return b, nil
	case code == http.StatusNotFound:
		return nil, fmt.Errorf("%s: %s: %w", w, key, os.ErrNotExist)
	}
	return nil, fmt.Errorf("%s: GET %s: %d %s", w, key, code, firstLine(b))
}

// List implements trailseal.WitnessReader.
func (w *HTTP) List(ctx context.Context, prefix string) ([]string, error) {
	code, b, err := w.do(ctx, http.MethodGet, "/?prefix="+url.QueryEscape(prefix), nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s: list %s: %d %s", w, prefix, code, firstLine(b))
	}
	var keys []string
	for _, k := range strings.Split(string(b), "\n") {
		if k != "" {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Handler is a receiver of the HTTP witness protocol (see HTTP) that keeps
// what it is sent in a directory witness: run it on a machine the
// database's administrator does not control. With a Token, every request
// must carry it. Objects are never replaced (409).
type Handler struct {
	Dir   trailseal.DirWitness
	Token string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.Token != "" && r.Header.Get("Authorization") != "Bearer "+h.Token {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/")
	switch {
	case r.Method == http.MethodGet && key == "":
		keys, err := h.Dir.List(r.Context(), r.URL.Query().Get("prefix"))
		if err != nil {
			http.Error(w, "list failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, k := range keys {
			io.WriteString(w, k+"\n")
		}
	case r.Method == http.MethodGet:
		b, err := h.Dir.Get(r.Context(), key)
		if errors.Is(err, os.ErrNotExist) {
			http.Error(w, "no such object", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(b)
	case r.Method == http.MethodPost:
		if !strings.HasPrefix(key, trailseal.WitnessCheckpoints) && !strings.HasPrefix(key, trailseal.WitnessHeads) {
			http.Error(w, "key must start with checkpoints/ or heads/", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20+1))
		if err != nil || len(body) > 64<<20 {
			http.Error(w, "body too large or unreadable", http.StatusBadRequest)
			return
		}
		_, gerr := h.Dir.Get(r.Context(), key)
		existed := gerr == nil
		err = h.Dir.Put(r.Context(), key, body)
		switch {
		case errors.Is(err, trailseal.ErrWitnessConflict):
			http.Error(w, "the key holds other bytes", http.StatusConflict)
		case err != nil:
			http.Error(w, "bad key or store failure", http.StatusBadRequest)
		case existed:
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusCreated)
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
