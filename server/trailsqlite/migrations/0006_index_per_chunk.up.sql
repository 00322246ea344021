-- Ingest cost that does not grow with the file (issue 19 item 3). A
-- multi-row INSERT that SQLite thinks may abort half-way keeps a statement
-- journal: a copy of every page it changes for the first time. Once the
-- random-key indexes (target, actor, action) have more leaves than a chunk
-- has rows, that is one page per row per index, about a fifth of ingest CPU
-- at 100,000 events and growing. Three things made the event INSERT one that
-- may abort: the FTS5 insert (a virtual table) and json_extract (any SQL
-- function call) in the trail_events_ai trigger, and the length() call in
-- CHECK (length(id) = 16).
--
-- So the insert trigger goes: Append writes the FTS5 rows and the changed-field
-- rows itself, one statement each per chunk (server/trailsqlite/index.go).
-- And the table is rebuilt without the CHECK (SQLite cannot drop one in
-- place); the store writes the UUID's 16 bytes, and Get and the readers
-- refuse another length. Rowids (seq) are kept, so the FTS5 index, the
-- changed-field rows and the seal tables still point at the same events.
-- On an existing file this copies the events once.
DROP TRIGGER trail_events_ai;
DROP TRIGGER trail_events_ad;
DROP TRIGGER trail_events_bu;

CREATE TABLE trail_events_rebuilt (
    seq              INTEGER PRIMARY KEY,           -- rowid: insertion order, FTS5 and field rows point at it
    id               BLOB    NOT NULL UNIQUE,       -- 16-byte UUID; the idempotency key
    occurred_at      INTEGER NOT NULL,              -- unix microseconds, UTC
    recorded_at      INTEGER NOT NULL,              -- unix microseconds, UTC
    tenant           TEXT    NOT NULL DEFAULT '',   -- '' is a platform event
    actor_type       TEXT    NOT NULL,
    actor_id         TEXT    NOT NULL DEFAULT '',
    actor_name       TEXT    NOT NULL DEFAULT '',
    actor_email      TEXT    NOT NULL DEFAULT '',
    actor_ip         TEXT    NOT NULL DEFAULT '',
    actor_user_agent TEXT    NOT NULL DEFAULT '',
    on_behalf_of     TEXT,                          -- JSON actor, NULL when nobody is impersonated
    action           TEXT    NOT NULL,
    target_type      TEXT    NOT NULL DEFAULT '',
    target_id        TEXT    NOT NULL DEFAULT '',
    target_name      TEXT    NOT NULL DEFAULT '',
    outcome          TEXT    NOT NULL,
    description      TEXT    NOT NULL DEFAULT '',
    changes          TEXT,                          -- JSON array of {field, old?, new?, redacted?}
    metadata         TEXT,                          -- canonical JSON object
    request_id       TEXT    NOT NULL DEFAULT '',
    trace_id         TEXT    NOT NULL DEFAULT '',
    source           TEXT    NOT NULL DEFAULT '',
    schema_version   INTEGER NOT NULL,
    span_id          TEXT    NOT NULL DEFAULT ''    -- 0005
);
INSERT INTO trail_events_rebuilt (seq, id, occurred_at, recorded_at, tenant, actor_type, actor_id, actor_name,
    actor_email, actor_ip, actor_user_agent, on_behalf_of, action, target_type, target_id, target_name, outcome,
    description, changes, metadata, request_id, trace_id, source, schema_version, span_id)
SELECT seq, id, occurred_at, recorded_at, tenant, actor_type, actor_id, actor_name,
    actor_email, actor_ip, actor_user_agent, on_behalf_of, action, target_type, target_id, target_name, outcome,
    description, changes, metadata, request_id, trace_id, source, schema_version, span_id
FROM trail_events ORDER BY seq;
DROP TABLE trail_events;
ALTER TABLE trail_events_rebuilt RENAME TO trail_events;

-- The indexes and the remaining triggers of 0001, unchanged.
CREATE INDEX trail_events_time ON trail_events (occurred_at, id, action);
CREATE INDEX trail_events_tenant_time ON trail_events (tenant, occurred_at, id, action);
CREATE INDEX trail_events_actor ON trail_events (tenant, actor_id, occurred_at, id);
CREATE INDEX trail_events_target ON trail_events (target_type, target_id, occurred_at, id);
CREATE INDEX trail_events_action ON trail_events (tenant, action, occurred_at, id);

CREATE TRIGGER trail_events_ad AFTER DELETE ON trail_events BEGIN
    INSERT INTO trail_events_fts (trail_events_fts, rowid, description)
        SELECT 'delete', old.seq, old.description WHERE old.description <> '';
    DELETE FROM trail_event_fields
        WHERE seq = old.seq
          AND field IN (SELECT json_extract(value, '$.field') FROM json_each(old.changes));
END;

CREATE TRIGGER trail_events_bu BEFORE UPDATE ON trail_events BEGIN
    SELECT RAISE(ABORT, 'trail_events is append-only');
END;
