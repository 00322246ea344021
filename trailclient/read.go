package trailclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// Query returns one page of events matching q, newest first. Page.Next
// continues. The key decides the scope of a query that names no tenant: a
// tenant key needs no q.Tenant; an all-tenant key without one reads every
// tenant (q.AllTenants says so, and is not needed). Reads are retried like
// writes (they are idempotent).
func (c *Client) Query(ctx context.Context, q trail.Query) (trail.Page, error) {
	v, err := queryValues(q)
	if err != nil {
		return trail.Page{}, err
	}
	return c.page(ctx, "/v1/events", v)
}

// History returns one page of the events that targeted the object typ:id.
// Of q, only Tenant, Since, Until, Limit and Cursor apply.
func (c *Client) History(ctx context.Context, typ, id string, q trail.Query) (trail.Page, error) {
	v, err := queryValues(trail.Query{Tenant: q.Tenant, Since: q.Since, Until: q.Until, Limit: q.Limit, Cursor: q.Cursor})
	if err != nil {
		return trail.Page{}, err
	}
	return c.page(ctx, "/v1/objects/"+url.PathEscape(typ)+"/"+url.PathEscape(id)+"/history", v)
}

func (c *Client) page(ctx context.Context, path string, v url.Values) (trail.Page, error) {
	var out struct {
		Events     []trail.Event `json:"events"`
		NextCursor string        `json:"next_cursor"`
	}
	if err := c.retry(ctx, func() error { return c.do(ctx, http.MethodGet, path, v, nil, &out) }); err != nil {
		return trail.Page{}, err
	}
	return trail.Page{Events: out.Events, Next: out.NextCursor}, nil
}

// Get returns one event. A missing event, or one the key may not see, is
// an error matching trail.ErrNotFound.
func (c *Client) Get(ctx context.Context, id uuid.UUID) (trail.Event, error) {
	var ev trail.Event
	err := c.retry(ctx, func() error { return c.do(ctx, http.MethodGet, "/v1/events/"+id.String(), nil, nil, &ev) })
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return trail.Event{}, errors.Join(trail.ErrNotFound, err)
	}
	return ev, err
}

// Stats returns event counts by day (UTC, or q.Zone's: each Day then at
// its offset there) and action, for any of the filters Query takes.
func (c *Client) Stats(ctx context.Context, q trail.CountQuery) ([]trail.Count, error) {
	cq := q.Query()
	cq.AllTenants = false // queryValues sends no tenant for every tenant
	v, err := queryValues(cq)
	if err != nil {
		return nil, err
	}
	if q.Zone != nil && q.Zone != time.UTC {
		v.Set("tz", q.Zone.String()) // each Day comes back as midnight there, at its offset
	}
	var out struct {
		Counts []trail.Count `json:"counts"`
	}
	if err := c.retry(ctx, func() error { return c.do(ctx, http.MethodGet, "/v1/stats", v, nil, &out) }); err != nil {
		return nil, err
	}
	return out.Counts, nil
}

// queryValues encodes q as the API's query parameters. A query without a
// tenant is sent without one: the server applies the key's scope (its
// tenant, or every tenant), so q is checked as a read of every tenant.
func queryValues(q trail.Query) (url.Values, error) {
	vq := q
	if vq.Tenant == "" {
		vq.AllTenants = true
	}
	if err := vq.Validate(); err != nil {
		return nil, err
	}
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("tenant", q.Tenant)
	switch {
	case q.ActorType != "" && q.ActorID != "":
		v.Set("actor", string(q.ActorType)+":"+q.ActorID)
	case q.ActorType != "":
		v.Set("actor", string(q.ActorType))
	case q.ActorID != "":
		return nil, errors.New("trailclient: the API filters an actor by type:id; set ActorType too")
	}
	set("actor_name", q.ActorName)
	set("actor_email", q.ActorEmail)
	if !q.ActorNameDigest.IsZero() || !q.ActorEmailDigest.IsZero() {
		// The server computes pseudonyms from the plaintext: digests stay
		// on the server.
		return nil, errors.New("trailclient: the API finds an actor by ActorName or ActorEmail, not by digest")
	}
	set("action", q.Action)
	switch {
	case q.TargetType != "" && q.TargetID != "":
		v.Set("target", q.TargetType+":"+q.TargetID)
	case q.TargetType != "" || q.TargetID != "":
		return nil, errors.New("trailclient: the API filters a target by type:id; set TargetType and TargetID")
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	set("outcome", string(q.Outcome))
	set("field", q.Field)
	set("text", q.Text)
	set("metadata", q.Metadata)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	set("cursor", q.Cursor)
	return v, nil
}
