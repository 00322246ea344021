// Package demo generates Trail's demo dataset: the story of a multi-tenant
// SaaS told in audit events — tenants with users and subscriptions, plan
// changes ("who changed that subscription?"), user deletions, sign-ins that
// fail or are denied, invoices, admin commands run by a system actor, a
// support agent impersonating a customer, and a few platform events.
//
// The dataset exists so that a new user sees Trail answer real questions
// within a minute (`trail demo`, `trail serve --demo`), and so that the other
// parts of Trail have realistic input to work on: events spread over two
// years for retention and archiving, secrets in metadata and changes for the
// privacy layer, hostile text for the UI's escaping.
//
// Generation is deterministic: the same Config (seed, size and Now) always
// yields the same events, IDs included, so tests and screenshots are stable.
// The data is fictional; names use reserved example domains and addresses
// from the documentation ranges of RFC 5737.
package demo
