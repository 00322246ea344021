-- Flat ingest as the file grows (issue 19 item 3). The subject indexes
-- (actor, action, target) took keys spread over the whole tree: once they
-- had more leaf pages than a batch has rows, every event dirtied a page of
-- its own in each, written to the WAL and again to the file, and a 20k-event
-- Append into a file of 1 M events cost 2.4 times one into an empty file.
-- Led by the event's UTC day, utc_day (occurred_at in microseconds divided by
-- 86 400 000 000, truncated as SQLite and Go divide; a virtual column, so no
-- byte in the row), a batch's new keys fall into the few days it covers,
-- whose subtrees stay small however large the file grows.
--
-- The index no longer gives one subject's events in order on its own: a
-- read probes it day by day, newest first, over the days that hold events
-- (trail_tenant_days for a tenant, trail_days for all tenants), and within a
-- day reads (occurred_at, id) in order, so the page still comes out of the
-- index without a sort. A column rather than an index on the expression:
-- SQLite's planner matches "utc_day IN (…)" to the index on a fresh file
-- without statistics; it did not match the expression that way. Append adds
-- a batch's days in its transaction; rows of days whose events were later
-- deleted stay (a probe that finds nothing).
DROP INDEX IF EXISTS trail_events_actor;
DROP INDEX IF EXISTS trail_events_action;
DROP INDEX IF EXISTS trail_events_target;

ALTER TABLE trail_events ADD COLUMN utc_day INTEGER GENERATED ALWAYS AS (occurred_at / 86400000000) VIRTUAL;

CREATE TABLE trail_days (
    day INTEGER PRIMARY KEY
);

CREATE TABLE trail_tenant_days (
    tenant TEXT NOT NULL,
    day    INTEGER NOT NULL,
    PRIMARY KEY (tenant, day)
) WITHOUT ROWID;

INSERT INTO trail_tenant_days (tenant, day)
SELECT DISTINCT tenant, utc_day FROM trail_events;
INSERT INTO trail_days (day) SELECT DISTINCT day FROM trail_tenant_days;

CREATE INDEX trail_events_actor ON trail_events (utc_day, tenant, actor_id, occurred_at, id);
CREATE INDEX trail_events_action ON trail_events (utc_day, tenant, action, occurred_at, id);
CREATE INDEX trail_events_target ON trail_events (utc_day, target_type, target_id, occurred_at, id);
