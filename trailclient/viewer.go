package trailclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ViewerTokenRequest asks for a tenant-facing viewer link (POST
// /v1/viewer-tokens, an admin key whose scope covers Tenant).
type ViewerTokenRequest struct {
	// Tenant is the one tenant the viewer shows. Required.
	Tenant string `json:"tenant"`
	// ExpiresIn is the token's lifetime. Default (0): the server's, 15
	// minutes; at most 12 hours.
	ExpiresIn time.Duration `json:"-"`
	// Viewer is who will open the link: the actor of the viewer's
	// audit.read events.
	Viewer *ViewerPerson `json:"viewer,omitempty"`
	// Actions, Actor and Target narrow what the viewer shows (an action
	// or pattern such as "user.*"; actor and target as type:id).
	Actions []string `json:"actions,omitempty"`
	Actor   string   `json:"actor,omitempty"`
	Target  string   `json:"target,omitempty"`
	// Export lets the viewer download CSV.
	Export bool `json:"export,omitempty"`
}

// ViewerPerson names the customer's user who opens a viewer link.
type ViewerPerson struct {
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// ViewerToken is a signed viewer token and where it opens.
type ViewerToken struct {
	Token  string `json:"token"`
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// URL is the viewer's absolute address on the server, token included:
	// a link for the customer, or the src of <trail-viewer>.
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ViewerSettings are a tenant's viewer settings: the origins that may embed
// the viewer in an iframe, and its brand.
type ViewerSettings struct {
	FrameOrigins []string `json:"frame_origins"`
	Name         string   `json:"name,omitempty"`
	Accent       string   `json:"accent,omitempty"`
	Background   string   `json:"background,omitempty"`
	Text         string   `json:"text,omitempty"`
}

// ViewerToken asks the server for a short-lived viewer token for one
// tenant. Hand URL to the customer's administrator, or embed it:
//
//	<script src="https://trail.example/viewer/static/embed.js" defer></script>
//	<trail-viewer src="{{.URL}}"></trail-viewer>
func (c *Client) ViewerToken(ctx context.Context, req ViewerTokenRequest) (ViewerToken, error) {
	body := struct {
		ViewerTokenRequest
		ExpiresIn string `json:"expires_in,omitempty"`
	}{ViewerTokenRequest: req}
	if req.ExpiresIn < 0 {
		return ViewerToken{}, fmt.Errorf("trailclient: ExpiresIn %s is negative", req.ExpiresIn)
	}
	if req.ExpiresIn > 0 {
		body.ExpiresIn = fmt.Sprintf("%ds", int64((req.ExpiresIn+time.Second-1)/time.Second))
	}
	b, err := json.Marshal(body)
	if err != nil {
		return ViewerToken{}, err
	}
	var vt ViewerToken
	// A retried request mints another token; the unused one expires.
	if err := c.retry(ctx, func() error { return c.do(ctx, http.MethodPost, "/v1/viewer-tokens", nil, b, &vt) }); err != nil {
		return ViewerToken{}, err
	}
	if strings.HasPrefix(vt.URL, "/") {
		vt.URL = c.base.String() + vt.URL
	}
	return vt, nil
}

// ViewerSettings returns a tenant's viewer settings.
func (c *Client) ViewerSettings(ctx context.Context, tenant string) (ViewerSettings, error) {
	var vs ViewerSettings
	err := c.retry(ctx, func() error {
		return c.do(ctx, http.MethodGet, "/v1/viewer-settings/"+url.PathEscape(tenant), nil, nil, &vs)
	})
	return vs, err
}

// SetViewerSettings replaces a tenant's viewer settings; they apply to
// tokens already issued.
func (c *Client) SetViewerSettings(ctx context.Context, tenant string, vs ViewerSettings) (ViewerSettings, error) {
	if vs.FrameOrigins == nil {
		vs.FrameOrigins = []string{}
	}
	b, err := json.Marshal(vs)
	if err != nil {
		return ViewerSettings{}, err
	}
	var out ViewerSettings
	err = c.retry(ctx, func() error {
		return c.do(ctx, http.MethodPut, "/v1/viewer-settings/"+url.PathEscape(tenant), nil, b, &out)
	})
	return out, err
}
