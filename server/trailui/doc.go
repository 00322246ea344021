// Package trailui is Trail's admin web UI, served by `trail serve` at /ui/:
// the event list with filters and keyset paging, an event's detail with its
// field diff and its integrity (verified on each view against the latest
// signed checkpoint, verify.go, with the proof to download), an object's
// history and its state as of a time, an actor's activity, a live tail and
// exports.
//
// Why it looks the way it does: audit data is attacker-controlled (any
// service can write a description), and the UI is read by the people with the
// most access. So it renders on the server with html/template, which escapes
// every value; it runs under a strict Content-Security-Policy (no inline
// script, no eval: htmx is configured with allowEval false); its only
// scripts are embedded files (htmx 2.0.11, vendored from `npm pack htmx.org@2`
// with its 0BSD license in static/htmx.LICENSE, and app.js, which localizes
// times and follows the live tail with textContent only). The main list
// works without JavaScript.
//
// The UI holds no authority of its own. It reaches the store only through a
// Backend, which trailserver implements with the functions its API uses, so
// a viewer sees exactly what its API key may read (a tenant key never sees
// another tenant's events, nor a tenant picker) and every page read is an
// audit.read event like an API read.
//
// Sessions: a viewer signs in with an API key (reader or admin) and gets a
// cookie from the Config.Sessions SessionStore (session.go). trailserver's
// store signs it (HMAC, a secret kept in the database) and names only the
// key's ID, so sessions survive restarts and work across replicas; without
// one, sessions live in this process's memory. The key is checked again on
// every request, so revoking it ends its sessions. Every POST carries a CSRF
// token: a hash of the session cookie, or a double-submit cookie on the
// sign-in form. Sign-ins, sign-outs and refused sign-ins go to a Backend
// that implements AuthAuditor.
//
// The tenant-facing viewer (viewer.go, NewViewer) is a separate handler: a
// read-only page of one tenant's events opened with a signed viewer token,
// framable only by the origins configured for that tenant, with
// static/embed.js's <trail-viewer> element for the SaaS's pages.
package trailui
