package trailcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailclient"
)

// ViewerTokenCmd is `trail viewer-token`: a short-lived link to the
// tenant-facing viewer (docs/ui.md), asked of a running server through the
// API (POST /v1/viewer-tokens, trailclient.Client.ViewerToken) with an admin
// key. The server signs it with its own secret, so there is no offline mode:
// a token minted anywhere else would not open.
type ViewerTokenCmd struct {
	URL    string `name:"url" env:"TRAIL_URL" required:"" placeholder:"URL" help:"The Trail server, e.g. https://trail.example."`
	APIKey string `name:"api-key" env:"TRAIL_API_KEY,TRAIL_KEY" required:"" placeholder:"KEY" help:"An admin key whose scope covers the tenant."`

	Tenant  string   `name:"tenant" required:"" placeholder:"T" help:"The one tenant the viewer shows."`
	Expires string   `name:"expires" placeholder:"DURATION" help:"Lifetime: 30m, 2h; default the server's (15m), at most 12h."`
	Action  []string `name:"action" placeholder:"A" help:"Show only these actions or patterns (user.*, *.delete). Repeatable or comma-separated."`
	Actor   string   `name:"actor" placeholder:"TYPE:ID" help:"Show only this actor's events."`
	Target  string   `name:"target" placeholder:"TYPE:ID" help:"Show only events on this object."`
	Export  bool     `name:"export" help:"Let the viewer download CSV and JSON Lines."`

	ViewerID    string `name:"viewer-id" placeholder:"ID" help:"The customer's user who opens the link: the actor (user:ID) of the viewer's audit.read events."`
	ViewerName  string `name:"viewer-name" placeholder:"NAME" help:"That user's name."`
	ViewerEmail string `name:"viewer-email" placeholder:"EMAIL" help:"That user's e-mail."`

	JSON bool `name:"json" help:"Print the server's answer as JSON: token, id, tenant, url, expires_at."`
}

// Run asks for the token and prints its link.
func (c *ViewerTokenCmd) Run(e *Env) error {
	req, err := c.request()
	if err != nil {
		return err
	}
	cl, err := trailclient.New(trailclient.Config{BaseURL: c.URL, Key: c.APIKey, MaxAttempts: 3})
	if err != nil {
		return Usagef("--url: %v", err)
	}
	defer cl.Close(context.WithoutCancel(e.Ctx))
	vt, err := cl.ViewerToken(e.Ctx, req)
	if err != nil {
		return viewerAPIError(err)
	}
	if c.JSON {
		return json.NewEncoder(e.Stdout).Encode(vt)
	}
	fmt.Fprintf(e.Stdout, "Viewer link for tenant %s (token %s), valid until %s:\n\n  %s\n\n", vt.Tenant, vt.ID,
		vt.ExpiresAt.In(e.Loc).Format(time.RFC3339), vt.URL)
	fmt.Fprintf(e.Stdout, "Embed it on an origin set in the tenant's frame_origins (PUT /v1/viewer-settings/%s):\n\n", vt.Tenant)
	base := strings.TrimRight(c.URL, "/")
	fmt.Fprintf(e.Stdout, "  <script src=\"%s/viewer/static/embed.js\" defer></script>\n  <trail-viewer src=\"%s\"></trail-viewer>\n", base, vt.URL)
	return nil
}

// request checks the flags as the server would, so that bad input fails
// here with the flag's name and exit 2, and builds the API request.
func (c *ViewerTokenCmd) request() (trailclient.ViewerTokenRequest, error) {
	req := trailclient.ViewerTokenRequest{Tenant: c.Tenant, Actor: c.Actor, Target: c.Target, Export: c.Export}
	if !trail.ValidTenant(c.Tenant) {
		return req, Usagef("--tenant: %q is not a valid tenant", c.Tenant)
	}
	if c.Expires != "" {
		d, err := trailserver.ParseDuration(c.Expires)
		if err != nil {
			return req, Usagef("--expires: %v", err)
		}
		if d > trailserver.MaxViewerTTL {
			return req, Usagef("--expires: %s is longer than the most a viewer link lives (%s)", c.Expires, trailserver.MaxViewerTTL)
		}
		req.ExpiresIn = d
	}
	for _, a := range c.Action {
		a = strings.TrimSpace(a)
		if a == "" || strings.Contains(a, "!") {
			return req, Usagef("--action: %q: give actions or patterns with * (user.*, *.delete); a viewer link cannot exclude", a)
		}
		req.Actions = append(req.Actions, a)
	}
	for _, f := range []struct{ flag, v string }{{"--actor", c.Actor}, {"--target", c.Target}} {
		if typ, id, ok := strings.Cut(f.v, ":"); f.v != "" && (!ok || typ == "" || id == "") {
			return req, Usagef("%s: %q must be type:id (user:42)", f.flag, f.v)
		}
	}
	if c.ViewerID != "" || c.ViewerName != "" || c.ViewerEmail != "" {
		req.Viewer = &trailclient.ViewerPerson{ID: c.ViewerID, Name: c.ViewerName, Email: c.ViewerEmail}
	}
	return req, nil
}

// viewerFlags names the CLI flag of each field the API may refuse.
var viewerFlags = map[string]string{"tenant": "--tenant", "expires_in": "--expires", "actions": "--action",
	"actor": "--actor", "target": "--target", "viewer": "--viewer-id/--viewer-name/--viewer-email"}

// viewerAPIError turns the server's refusal of the request (400) into a
// usage error naming the flag; other failures (a key that may not, a
// server away) stay failures.
func viewerAPIError(err error) error {
	var ae *trailclient.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		return err
	}
	flag, ok := viewerFlags[ae.Field]
	if !ok {
		flag = ae.Field
	}
	if flag == "" {
		return &UsageError{Err: err}
	}
	return Usagef("%s: %s", flag, ae.Detail)
}
