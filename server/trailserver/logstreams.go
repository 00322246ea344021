package trailserver

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// LogStreams is what the /v1/log-streams endpoints need: the streams that
// deliver each tenant's events to its SIEM, webhook or bucket
// (docs/log-streams.md). logstream.API adapts a logstream.Manager to it
// (trailserver does not depend on logstream, whose destinations pull in the
// S3 SDK). Answers are JSON values; errors a *LogStreamError to answer with
// a problem, anything else is a 500. Every change is recorded by the
// implementation as the actor of the context it is given.
type LogStreams interface {
	Create(ctx context.Context, c LogStreamCaller, body []byte) (any, error)
	List(ctx context.Context, c LogStreamCaller) (any, error)
	Get(ctx context.Context, c LogStreamCaller, id string) (any, error)
	SetEnabled(ctx context.Context, c LogStreamCaller, id string, enabled bool) (any, error)
	Delete(ctx context.Context, c LogStreamCaller, id string) error
	RotateSecret(ctx context.Context, c LogStreamCaller, id string, body []byte) (any, error)
	DeadLetters(ctx context.Context, c LogStreamCaller, id string) (any, error)
	// WriteMetrics writes the streams' health in Prometheus text format
	// (trail_log_stream_*).
	WriteMetrics(ctx context.Context, w io.Writer)
}

// LogStreamCaller is the calling key's scope: a tenant admin manages its
// tenant's streams only; an all-tenant admin every stream.
type LogStreamCaller struct {
	Tenant string
	All    bool
}

// LogStreamError is a refused log-stream request: Status 400 (Field names
// the input), 403, 404, 409 or 422 (the destination's test delivery failed).
type LogStreamError struct {
	Status int
	Field  string
	Detail string
}

func (e *LogStreamError) Error() string { return e.Detail }

func (s *Server) logStreamRoutes() {
	s.handle("POST /v1/log-streams", isAdmin, s.logStreamCall(func(ls LogStreams, r *http.Request, c LogStreamCaller, body []byte) (int, any, error) {
		v, err := ls.Create(r.Context(), c, body)
		return http.StatusCreated, v, err
	}))
	s.handle("GET /v1/log-streams", isAdmin, s.logStreamCall(func(ls LogStreams, r *http.Request, c LogStreamCaller, _ []byte) (int, any, error) {
		v, err := ls.List(r.Context(), c)
		return http.StatusOK, v, err
	}))
	s.handle("GET /v1/log-streams/{id}", isAdmin, s.logStreamCall(func(ls LogStreams, r *http.Request, c LogStreamCaller, _ []byte) (int, any, error) {
		v, err := ls.Get(r.Context(), c, r.PathValue("id"))
		return http.StatusOK, v, err
	}))
	s.handle("POST /v1/log-streams/{id}/pause", isAdmin, s.logStreamCall(func(ls LogStreams, r *http.Request, c LogStreamCaller, _ []byte) (int, any, error) {
		v, err := ls.SetEnabled(r.Context(), c, r.PathValue("id"), false)
		return http.StatusOK, v, err
	}))
	s.handle("POST /v1/log-streams/{id}/resume", isAdmin, s.logStreamCall(func(ls LogStreams, r *http.Request, c LogStreamCaller, _ []byte) (int, any, error) {
		v, err := ls.SetEnabled(r.Context(), c, r.PathValue("id"), true)
		return http.StatusOK, v, err
	}))
	s.handle("POST /v1/log-streams/{id}/rotate-secret", isAdmin, s.logStreamCall(func(ls LogStreams, r *http.Request, c LogStreamCaller, body []byte) (int, any, error) {
		v, err := ls.RotateSecret(r.Context(), c, r.PathValue("id"), body)
		return http.StatusOK, v, err
	}))
	s.handle("GET /v1/log-streams/{id}/dead-letters", isAdmin, s.logStreamCall(func(ls LogStreams, r *http.Request, c LogStreamCaller, _ []byte) (int, any, error) {
		v, err := ls.DeadLetters(r.Context(), c, r.PathValue("id"))
		return http.StatusOK, v, err
	}))
	s.handle("DELETE /v1/log-streams/{id}", isAdmin, s.logStreamCall(func(ls LogStreams, r *http.Request, c LogStreamCaller, _ []byte) (int, any, error) {
		return http.StatusNoContent, nil, ls.Delete(r.Context(), c, r.PathValue("id"))
	}))
}

type logStreamFunc func(ls LogStreams, r *http.Request, c LogStreamCaller, body []byte) (int, any, error)

// logStreamCall reads the body (64 KiB at most), runs f as k's actor and
// answers its value, or its error as a problem.
func (s *Server) logStreamCall(f logStreamFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, k *Key) {
		if s.cfg.LogStreams == nil {
			writeProblem(w, r, notFound("log streams are not configured on this server"))
			return
		}
		var body []byte
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					writeProblem(w, r, problem(http.StatusRequestEntityTooLarge, ProblemTooLarge, "body", "at most 64 KiB"))
					return
				}
				writeProblem(w, r, badRequest("body", "could not be read"))
				return
			}
			body = b
		}
		r = r.WithContext(retentionCtx(r, k)) // k's actor, the request ID, source trail-server
		status, v, err := f(s.cfg.LogStreams, r, LogStreamCaller{Tenant: k.Tenant, All: k.AllTenants()}, body)
		var le *LogStreamError
		switch {
		case errors.As(err, &le):
			typ := ProblemInvalid
			switch le.Status {
			case http.StatusForbidden:
				typ = ProblemForbidden
			case http.StatusNotFound:
				typ = ProblemNotFound
			}
			writeProblem(w, r, problem(le.Status, typ, le.Field, le.Detail))
		case err != nil:
			s.log.Error("trailserver: log streams", "err", err)
			writeProblem(w, r, problem(http.StatusInternalServerError, ProblemInternal, "", "the log stream could not be read or changed"))
		case status == http.StatusNoContent:
			w.WriteHeader(status)
		default:
			writeJSON(w, status, v)
		}
	}
}

func (s *Server) writeLogStreamMetrics(w io.Writer) {
	if s.cfg.LogStreams != nil {
		s.cfg.LogStreams.WriteMetrics(context.Background(), w)
	}
}
