package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail/server/trailserver"
)

// uiPage is one admin UI page the ui workload renders, its path made from a
// sample.
type uiPage struct {
	name string
	path func(p sample) string
}

var uiPages = []uiPage{
	{name: "list", path: func(sample) string { return "/ui/" }},
	{name: "list_tenant", path: func(p sample) string { return "/ui/?tenant=" + url.QueryEscape(p.tenant) }},
	{name: "list_action", path: func(p sample) string { return "/ui/?action=" + url.QueryEscape(p.action) }},
	{name: "list_actor_in_tenant", path: func(p sample) string {
		return "/ui/?tenant=" + url.QueryEscape(p.tenant) + "&actor=" + url.QueryEscape("user:"+p.user)
	}},
	// The actor link of an event's page, which carries the event's tenant.
	{name: "actor_page", path: func(p sample) string {
		return "/ui/actors/" + url.PathEscape("user:"+p.user) + "?tenant=" + url.QueryEscape(p.tenant)
	}},
	// The actor in every tenant (the tenant filter cleared): the events_actor
	// index (migration 0008) leads with the actor.
	{name: "actor_page_all_tenants", path: func(p sample) string { return "/ui/actors/" + url.PathEscape("user:"+p.user) }},
	{name: "event_detail", path: func(p sample) string { return "/ui/events/" + p.id.String() }},
	{name: "object_history", path: func(p sample) string {
		return "/ui/objects/" + url.PathEscape(p.targetType) + "/" + url.PathEscape(p.targetID) + "?tenant=" + url.QueryEscape(p.tenant)
	}},
	{name: "object_history_all_tenants", path: func(p sample) string {
		return "/ui/objects/" + url.PathEscape(p.targetType) + "/" + url.PathEscape(p.targetID)
	}},
}

// ui times the admin UI's server side over the loaded table: the real
// trailserver handler (httptest, no network) with an all-tenant admin key in
// the store's schema, signed in once through the login form. Each page
// includes the store query, the audit.read event the read writes, and the
// template.
func (r *run) ui(ctx context.Context) error {
	db := stdlib.OpenDBFromPool(r.pool)
	defer db.Close()
	ks, err := trailserver.NewPostgresKeyStore(ctx, db, r.store.Schema())
	if err != nil {
		return fmt.Errorf("bench: ui: %w", err)
	}
	_, secret, err := trailserver.CreateKey(ctx, ks, trailserver.NewKeyRequest{All: true, Role: trailserver.RoleAdmin, Name: "bench admin"}, time.Now())
	if err != nil {
		return fmt.Errorf("bench: ui: %w", err)
	}
	srv, err := trailserver.New(trailserver.Config{Store: r.store, Keys: ks, RateLimit: -1})
	if err != nil {
		return fmt.Errorf("bench: ui: %w", err)
	}
	defer srv.Close()
	cookie, err := uiSignIn(srv, secret)
	if err != nil {
		return err
	}
	get := func(path string) (time.Duration, error) {
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		req.Header.Set("Cookie", cookie)
		rec := httptest.NewRecorder()
		t0 := time.Now()
		srv.ServeHTTP(rec, req)
		d := time.Since(t0)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "</html>") {
			return d, fmt.Errorf("bench: ui: GET %s: %d %.300s", path, rec.Code, rec.Body.String())
		}
		return d, nil
	}
	r.logf("ui: %d events, %d requests per page", r.cfg.Events, r.cfg.Queries)
	pr := rand.New(rand.NewPCG(r.cfg.Seed, 11))
	pick := func() sample { return r.samples[pr.IntN(len(r.samples))] }
	for range max(1, r.cfg.Queries/10) {
		for _, p := range uiPages {
			if _, err := get(p.path(pick())); err != nil {
				return err
			}
		}
	}
	lat := make([][]time.Duration, len(uiPages))
	for i := range r.cfg.Queries {
		for k := range uiPages {
			v := (i + k) % len(uiPages)
			d, err := get(uiPages[v].path(pick()))
			if err != nil {
				return err
			}
			lat[v] = append(lat[v], d)
		}
	}
	for v, p := range uiPages {
		var sum time.Duration
		for _, d := range lat[v] {
			sum += d
		}
		res := Result{Workload: "ui", Name: p.name, Events: r.cfg.Events, Ops: len(lat[v]), Seconds: sum.Seconds(),
			PerSec: float64(len(lat[v])) / sum.Seconds(),
			Note:   "trailserver handler via httptest, admin key, 50 events a page; includes the audit.read write"}
		res.latencies(lat[v])
		r.emit(res)
	}
	return nil
}

// uiSignIn signs in through the UI's login form (its double-submit CSRF
// cookie) and returns the session's Cookie header.
func uiSignIn(srv http.Handler, secret string) (string, error) {
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/login", nil))
	var csrf *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "trail_login_csrf" {
			csrf = c
		}
	}
	if rec.Code != http.StatusOK || csrf == nil {
		return "", fmt.Errorf("bench: ui: GET /ui/login: %d, no CSRF cookie", rec.Code)
	}
	form := url.Values{"csrf": {csrf.Value}, "key": {secret}, "next": {"/ui/"}}
	req := httptest.NewRequest(http.MethodPost, "/ui/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(csrf)
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "trail_session" && c.Value != "" {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", fmt.Errorf("bench: ui: sign-in: %d %.300s", rec.Code, rec.Body.String())
}
