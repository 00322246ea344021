package logstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
)

// API adapts m to trailserver's /v1/log-streams endpoints; runner, when
// set, adds its delivery counters to the metrics.
func API(m *Manager, runner *Runner) trailserver.LogStreams { return &api{m: m, r: runner} }

type api struct {
	m *Manager
	r *Runner
}

func caller(c trailserver.LogStreamCaller) Caller { return Caller{Tenant: c.Tenant, All: c.All} }

// problemOf turns the manager's errors into the API's.
func problemOf(err error) error {
	var (
		ve *ValidationError
		fe *ForbiddenError
		de *DestinationError
		te *trail.ValidationError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve):
		return &trailserver.LogStreamError{Status: http.StatusBadRequest, Field: ve.Field, Detail: ve.Reason}
	case errors.As(err, &fe):
		return &trailserver.LogStreamError{Status: http.StatusForbidden, Field: fe.Field, Detail: fe.Reason}
	case errors.Is(err, ErrNotFound):
		return &trailserver.LogStreamError{Status: http.StatusNotFound, Detail: "no such log stream"}
	case errors.As(err, &de):
		return &trailserver.LogStreamError{Status: http.StatusUnprocessableEntity, Field: "destination", Detail: de.Error()}
	case errors.Is(err, ErrNoKMS):
		return &trailserver.LogStreamError{Status: http.StatusConflict, Field: "secret", Detail: ErrNoKMS.Error()}
	case errors.As(err, &te):
		return &trailserver.LogStreamError{Status: http.StatusBadRequest, Field: te.Field, Detail: te.Error()}
	}
	return err
}

func (a *api) Create(ctx context.Context, c trailserver.LogStreamCaller, body []byte) (any, error) {
	req, err := DecodeCreate(body)
	if err != nil {
		return nil, problemOf(err)
	}
	v, err := a.m.Create(ctx, caller(c), req)
	return v, problemOf(err)
}

func (a *api) List(ctx context.Context, c trailserver.LogStreamCaller) (any, error) {
	v, err := a.m.List(ctx, caller(c))
	return map[string]any{"streams": v}, problemOf(err)
}

func (a *api) Get(ctx context.Context, c trailserver.LogStreamCaller, id string) (any, error) {
	v, err := a.m.Get(ctx, caller(c), id)
	return v, problemOf(err)
}

func (a *api) SetEnabled(ctx context.Context, c trailserver.LogStreamCaller, id string, enabled bool) (any, error) {
	v, err := a.m.SetEnabled(ctx, caller(c), id, enabled)
	return v, problemOf(err)
}

func (a *api) Delete(ctx context.Context, c trailserver.LogStreamCaller, id string) error {
	return problemOf(a.m.Delete(ctx, caller(c), id))
}

func (a *api) RotateSecret(ctx context.Context, c trailserver.LogStreamCaller, id string, body []byte) (any, error) {
	req, err := DecodeRotate(body)
	if err != nil {
		return nil, problemOf(err)
	}
	v, err := a.m.RotateSecret(ctx, caller(c), id, req)
	return v, problemOf(err)
}

func (a *api) DeadLetters(ctx context.Context, c trailserver.LogStreamCaller, id string) (any, error) {
	v, err := a.m.DeadLetters(ctx, caller(c), id)
	return map[string]any{"dead_letters": v}, problemOf(err)
}

// WriteMetrics writes every stream's health: trail_log_stream_healthy (1
// healthy or pending, 0 error or paused, by state), lag in events and seconds, the
// last delivered sequence number, the last success time, dead letters, and
// this process's delivery counters. Labelled by stream ID only: tenant names
// stay out of the public /metrics.
func (a *api) WriteMetrics(ctx context.Context, w io.Writer) {
	ss, err := a.m.List(ctx, Caller{All: true})
	if err != nil {
		fmt.Fprintf(w, "# log streams: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	type metric struct {
		name, help, typ string
		v               func(s *Stream) (float64, bool)
	}
	ms := []metric{
		{"trail_log_stream_healthy", "1 when the stream's last delivery succeeded (or nothing was due yet), 0 when it failed or is paused.", "gauge",
			func(s *Stream) (float64, bool) {
				return b2f(s.Health.State == StateHealthy || s.Health.State == StatePending), true
			}},
		{"trail_log_stream_lag_events", "Sealed events the stream has not looked at yet.", "gauge",
			func(s *Stream) (float64, bool) { return float64(s.Health.LagEvents), true }},
		{"trail_log_stream_lag_seconds", "Age of the oldest event the stream has not delivered.", "gauge",
			func(s *Stream) (float64, bool) { return s.Health.LagSeconds, true }},
		{"trail_log_stream_delivered_seq", "The last sequence number delivered.", "gauge",
			func(s *Stream) (float64, bool) { return float64(s.Health.Delivered), true }},
		{"trail_log_stream_last_success_timestamp_seconds", "When the last batch was accepted.", "gauge",
			func(s *Stream) (float64, bool) {
				if s.Health.LastSuccess == nil {
					return 0, false
				}
				return float64(s.Health.LastSuccess.UnixMicro()) / 1e6, true
			}},
		{"trail_log_stream_failures", "Failed attempts in a row.", "gauge",
			func(s *Stream) (float64, bool) { return float64(s.Health.Failures), true }},
		{"trail_log_stream_dead_letters", "Batches set aside after failing for dead_letter_after_s.", "gauge",
			func(s *Stream) (float64, bool) { return float64(s.Health.DeadLetters), true }},
	}
	if a.r != nil {
		ms = append(ms, metric{"trail_log_stream_delivered_events_total", "Events delivered by this process.", "counter",
			func(s *Stream) (float64, bool) { return float64(a.r.Counts(s.ID).Delivered), true }},
			metric{"trail_log_stream_delivery_errors_total", "Failed deliveries in this process.", "counter",
				func(s *Stream) (float64, bool) { return float64(a.r.Counts(s.ID).Failures), true }})
	}
	for _, m := range ms {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for i := range ss {
			if v, ok := m.v(&ss[i]); ok {
				fmt.Fprintf(w, "%s{stream=%q,state=%q} %s\n", m.name, ss[i].ID, ss[i].Health.State, strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
