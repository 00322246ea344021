package trailserver

import (
	"encoding/json"
	"fmt"
	"net/http"
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
			ID          string `json:"id"`
			Tenant      string `json:"tenant"`
			AllTenants  bool   `json:"all_tenants"`
			Name        string `json:"name"`
			Format      string `json:"format"`
			Destination struct {
				Type    string `json:"type"`
				URL     string `json:"url"`
				Address string `json:"address"`
				TLS     bool   `json:"tls"`
				Bucket  string `json:"bucket"`
				Prefix  string `json:"prefix"`
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
			where = "syslog://" + d.Address
			if d.TLS {
				where = "syslog+tls://" + d.Address
			}
		case "s3":
			where = "s3://" + d.Bucket + "/" + d.Prefix
		}
		h := s.Health
		out = append(out, trailui.LogStream{ID: s.ID, Tenant: s.Tenant, AllTenants: s.AllTenants, Name: s.Name, Destination: where,
			Format: s.Format, State: h.State, LastSuccess: h.LastSuccess, LastError: h.LastError, Delivered: h.Delivered,
			LagEvents: h.LagEvents, LagSeconds: h.LagSeconds, DeadLetters: h.DeadLetters})
	}
	return out, nil
}
