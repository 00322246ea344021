package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/trailhq/trail"
)

// Handler is the service's HTTP API:
//
//	DELETE /tenants/{tenant}/users/{id}                     delete a user
//	PUT    /tenants/{tenant}/subscription  {"plan": "pro"}  change the plan (409 when the tenant's users do not fit)
//	GET    /tenants/{tenant}/subscriptions/{id}/history     who changed it
//
// The acting user comes from the X-User-Id header. That stands in for real
// authentication (a session, a token) to keep the example short; what
// matters is that it ends up in the context, where Trail reads it.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("DELETE /tenants/{tenant}/users/{id}", a.withActor(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			http.Error(w, "bad user id", http.StatusBadRequest)
			return
		}
		if err := a.DeleteUser(r.Context(), r.PathValue("tenant"), id); err != nil {
			httpError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("PUT /tenants/{tenant}/subscription", a.withActor(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Plan string `json:"plan"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&body); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		res, err := a.ChangePlan(r.Context(), r.PathValue("tenant"), body.Plan)
		if err != nil {
			httpError(w, err)
			return
		}
		writeJSON(w, map[string]string{"event_id": res.ID.String()})
	}))
	mux.HandleFunc("GET /tenants/{tenant}/subscriptions/{id}/history", func(w http.ResponseWriter, r *http.Request) {
		evs, err := a.WhoChanged(r.Context(), r.PathValue("tenant"), r.PathValue("id"))
		if err != nil {
			httpError(w, err)
			return
		}
		if evs == nil {
			evs = []trail.Event{}
		}
		writeJSON(w, evs)
	})
	return mux
}

// withActor puts the acting user and the request into the context.
func (a *App) withActor(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get("X-User-Id")
		if user == "" {
			http.Error(w, "X-User-Id is required", http.StatusUnauthorized)
			return
		}
		reqID := r.Header.Get("X-Request-Id")
		if reqID == "" {
			var b [8]byte
			rand.Read(b[:])
			reqID = hex.EncodeToString(b[:])
		}
		ctx := trail.WithActor(r.Context(), trail.Actor{Type: trail.ActorUser, ID: user})
		ctx = trail.WithRequest(ctx, trail.Request{ID: reqID, IP: r.RemoteAddr, UserAgent: r.UserAgent()})
		h(w, r.WithContext(ctx))
	}
}

func httpError(w http.ResponseWriter, err error) {
	var verr *trail.ValidationError
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, ErrTooSmall):
		http.Error(w, err.Error(), http.StatusConflict)
	case errors.Is(err, ErrBadPlan), errors.As(err, &verr), errors.Is(err, trail.ErrInvalidQuery):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, context.Canceled):
		http.Error(w, "cancelled", http.StatusServiceUnavailable)
	default:
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
