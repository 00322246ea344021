package trailserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/trailhq/trail/server/trailui"
)

// LogStreams implements trailui.LogStreamLister: the streams the viewer's
// key manages (Config.LogStreams.List in its scope), with their health.
func (b uiBackend) LogStreams(r *http.Request, v trailui.Viewer) ([]trailui.LogStream, error) {
	if b.s.cfg.LogStreams == nil {
		return nil, nil
	}
	k := keyOf(v)
	if k.Role != RoleAdmin {
		return nil, nil
	}
	got, err := b.s.cfg.LogStreams.List(r.Context(), LogStreamCaller{Tenant: k.Tenant, All: k.AllTenants()})
	if err != nil {
		return nil, err
	}
	// The list is the API's JSON answer; read it back as the UI's rows.
	raw, err := json.Marshal(got)
	if err != nil {
		return nil, err
	}
	var list struct {
		Streams []struct {
			ID         string `json:"id"`
			Tenant     string `json:"tenant"`
			AllTenants bool   `json:"all_tenants"`
			Name       string `json:"name"`
			Format     string `json:"format"`
			Enabled    bool   `json:"enabled"`
			Filter     struct {
				Actions []string `json:"actions"`
				Outcome string   `json:"outcome"`
			} `json:"filter"`
			Destination struct {
				Type      string `json:"type"`
				URL       string `json:"url"`
				Address   string `json:"address"`
				TLS       bool   `json:"tls"`
				Transport string `json:"transport"`
				Bucket    string `json:"bucket"`
				Prefix    string `json:"prefix"`
			} `json:"destination"`
			Health struct {
				State       string     `json:"state"`
				LastSuccess *time.Time `json:"last_success"`
				LastError   string     `json:"last_error"`
				Delivered   int64      `json:"delivered"`
				LagEvents   int64      `json:"lag_events"`
				LagSeconds  float64    `json:"lag_seconds"`
				DeadLetters int64      `json:"dead_letters"`
			} `json:"health"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("trailserver: log streams for the UI: %w", err)
	}
	out := make([]trailui.LogStream, 0, len(list.Streams))
	for _, s := range list.Streams {
		d := s.Destination
		where := d.Type + " " + d.URL
		switch d.Type {
		case "syslog":
			scheme := "syslog"
			if d.Transport == "relp" {
				scheme = "relp"
			}
			if d.TLS {
				scheme += "+tls"
			}
			where = scheme + "://" + d.Address
		case "s3":
			where = "s3://" + d.Bucket + "/" + d.Prefix
		}
		h := s.Health
		filter := strings.Join(s.Filter.Actions, " ")
		if s.Filter.Outcome != "" {
			filter = strings.TrimPrefix(filter+", "+s.Filter.Outcome, ", ")
		}
		out = append(out, trailui.LogStream{ID: s.ID, Tenant: s.Tenant, AllTenants: s.AllTenants, Name: s.Name, Type: d.Type, Destination: where,
			Format: s.Format, Filter: filter, Enabled: s.Enabled, State: h.State, LastSuccess: h.LastSuccess, LastError: h.LastError, Delivered: h.Delivered,
			LagEvents: h.LagEvents, LagSeconds: h.LagSeconds, DeadLetters: h.DeadLetters})
	}
	return out, nil
}

// CreateLogStream implements trailui.LogStreamManager: the form becomes
// the body of POST /v1/log-streams and goes through the same
// LogStreams.Create as the API, in the viewer's key's scope (a tenant
// admin's caller is its tenant, whatever the form says) and as its actor.
func (b uiBackend) CreateLogStream(r *http.Request, v trailui.Viewer, f *trailui.LogStreamForm) (trailui.LogStreamChange, error) {
	req, err := f.Request()
	if err != nil {
		return trailui.LogStreamChange{}, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return trailui.LogStreamChange{}, err
	}
	return b.logStreamOp(r, v, func(ctx context.Context, ls LogStreams, c LogStreamCaller) (any, error) {
		return ls.Create(ctx, c, body)
	})
}

// ChangeLogStream implements trailui.LogStreamManager: pause, resume,
// delete and rotate-secret through the API's LogStreams methods.
func (b uiBackend) ChangeLogStream(r *http.Request, v trailui.Viewer, id, op, secret string, endOverlap bool) (trailui.LogStreamChange, error) {
	return b.logStreamOp(r, v, func(ctx context.Context, ls LogStreams, c LogStreamCaller) (any, error) {
		switch op {
		case trailui.LogStreamPause, trailui.LogStreamResume:
			return ls.SetEnabled(ctx, c, id, op == trailui.LogStreamResume)
		case trailui.LogStreamDelete:
			return map[string]string{"id": id}, ls.Delete(ctx, c, id)
		case trailui.LogStreamRotate:
			req := map[string]any{}
			if secret != "" {
				req["secret"] = secret
			}
			if endOverlap {
				req["overlap_s"] = -1
			}
			body, err := json.Marshal(req)
			if err != nil {
				return nil, err
			}
			return ls.RotateSecret(ctx, c, id, body)
		}
		return nil, &LogStreamError{Status: http.StatusNotFound, Detail: "no such operation"}
	})
}

// logStreamOp runs f as the API's /v1/log-streams handlers do: admin keys
// only, the key's scope as caller, the key as the events' actor
// (retentionCtx); a *LogStreamError becomes the page's inline error.
func (b uiBackend) logStreamOp(r *http.Request, v trailui.Viewer, f func(ctx context.Context, ls LogStreams, c LogStreamCaller) (any, error)) (trailui.LogStreamChange, error) {
	k := keyOf(v)
	if b.s.cfg.LogStreams == nil {
		return trailui.LogStreamChange{}, &trailui.Error{Status: http.StatusNotFound, Detail: "log streams are not configured on this server"}
	}
	if k.Role != RoleAdmin {
		return trailui.LogStreamChange{}, &trailui.Error{Status: http.StatusForbidden, Detail: fmt.Sprintf("a %s key cannot manage log streams", k.Role)}
	}
	got, err := f(retentionCtx(r, k), b.s.cfg.LogStreams, LogStreamCaller{Tenant: k.Tenant, All: k.AllTenants()})
	var le *LogStreamError
	if errors.As(err, &le) {
		return trailui.LogStreamChange{}, &trailui.Error{Status: le.Status, Field: le.Field, Detail: le.Detail}
	}
	if err != nil {
		return trailui.LogStreamChange{}, err
	}
	raw, err := json.Marshal(got)
	if err != nil {
		return trailui.LogStreamChange{}, err
	}
	var c struct {
		ID     string   `json:"id"`
		Name   string   `json:"name"`
		Secret string   `json:"secret"`
		Notes  []string `json:"notes"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return trailui.LogStreamChange{}, fmt.Errorf("trailserver: log stream answer for the UI: %w", err)
	}
	return trailui.LogStreamChange{ID: c.ID, Name: c.Name, Secret: c.Secret, Notes: c.Notes}, nil
}
