package trailclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// APIError is an error answer of the server: an RFC 9457 problem.
type APIError struct {
	Status int    `json:"status"`
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	// Field names the offending input, e.g. "events[3].action" or "limit".
	Field string `json:"field"`
	// RetryAfter is the server's Retry-After, for 429 and 503.
	RetryAfter time.Duration `json:"-"`
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("trail API: %d %s", e.Status, e.Title)
	if e.Field != "" {
		msg += ": " + e.Field
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Temporary reports whether retrying the same request may succeed.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// retry runs fn until it succeeds, fails permanently, or MaxAttempts (10
// when unset: a caller waits) is reached, sleeping with exponential backoff
// and jitter in between.
func (c *Client) retry(ctx context.Context, fn func() error) error {
	attempts := c.cfg.MaxAttempts
	if attempts == 0 {
		attempts = 10
	}
	var err error
	for attempt := 0; attempt < attempts; attempt++ {
		if err = fn(); err == nil || !retryable(err) {
			return err
		}
		if attempt == attempts-1 {
			break
		}
		if werr := sleepCtx(ctx, c.backoff(attempt, err)); werr != nil {
			return errors.Join(werr, err)
		}
	}
	return fmt.Errorf("trailclient: giving up after %d attempts: %w", attempts, err)
}

// backoff is the wait after failed attempt number attempt (0-based):
// MinBackoff doubled per attempt, capped at MaxBackoff, with jitter (half to
// all of it) so that many clients do not re-send in step; or the server's
// Retry-After, capped at MaxBackoff.
func (c *Client) backoff(attempt int, err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return min(ae.RetryAfter, c.cfg.MaxBackoff)
	}
	wait := c.cfg.MinBackoff << min(attempt, 20)
	if wait > c.cfg.MaxBackoff || wait <= 0 {
		wait = c.cfg.MaxBackoff
	}
	return wait/2 + rand.N(wait/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryable: network errors, 5xx and 429. Not: other 4xx, or a cancelled
// context.
func retryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Temporary()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var de *decodeError
	return !errors.As(err, &de)
}

type decodeError struct{ err error }

func (e *decodeError) Error() string { return "trailclient: decode the answer: " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// do sends one request and decodes a JSON answer into out (nil: none), or
// reads a text answer into out when it is a *[]byte. An error answer is an
// *APIError with the server's Retry-After.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) error {
	u, err := url.Parse(c.base.String() + path) // path segments are escaped by the callers
	if err != nil {
		return fmt.Errorf("trailclient: bad path %q: %w", path, err)
	}
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		ae := &APIError{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = json.Unmarshal(b, ae)
		ae.Status = resp.StatusCode
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			ae.RetryAfter = time.Duration(s) * time.Second
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok { // a text answer: a checkpoint note
		*raw, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return &decodeError{err}
	}
	return nil
}
