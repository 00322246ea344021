-- Trail's events on SQLite. See docs/storage-sqlite.md for why each index exists.

CREATE TABLE trail_events (
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
    CHECK (length(id) = 16)
);

-- All tenants, newest first (all-tenant readers); with action, it also
-- covers counts over a time range without reading the table.
CREATE INDEX trail_events_time ON trail_events (occurred_at, id, action);
-- A tenant's newest events and time ranges; covers a tenant's counts by day.
CREATE INDEX trail_events_tenant_time ON trail_events (tenant, occurred_at, id, action);
-- A user's events in a tenant.
CREATE INDEX trail_events_actor ON trail_events (tenant, actor_id, occurred_at, id);
-- An object's history (with or without a tenant).
CREATE INDEX trail_events_target ON trail_events (target_type, target_id, occurred_at, id);
-- An action or action prefix in a tenant; also covers counts by day and action.
CREATE INDEX trail_events_action ON trail_events (tenant, action, occurred_at, id);

-- Words of descriptions. External content: the text lives once, in trail_events.
CREATE VIRTUAL TABLE trail_events_fts USING fts5 (
    description,
    content = 'trail_events',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Changed field paths, for "who changed the plan?".
CREATE TABLE trail_event_fields (
    field TEXT    NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (field, seq)
) WITHOUT ROWID;

-- Triggers keep both in step with trail_events whoever writes it.
CREATE TRIGGER trail_events_ai AFTER INSERT ON trail_events BEGIN
    INSERT INTO trail_events_fts (rowid, description)
        SELECT new.seq, new.description WHERE new.description <> '';
    INSERT OR IGNORE INTO trail_event_fields (field, seq)
        SELECT json_extract(value, '$.field'), new.seq FROM json_each(new.changes)
        WHERE new.changes IS NOT NULL;
END;

CREATE TRIGGER trail_events_ad AFTER DELETE ON trail_events BEGIN
    INSERT INTO trail_events_fts (trail_events_fts, rowid, description)
        SELECT 'delete', old.seq, old.description WHERE old.description <> '';
    DELETE FROM trail_event_fields
        WHERE seq = old.seq
          AND field IN (SELECT json_extract(value, '$.field') FROM json_each(old.changes));
END;

-- Events are append-only: an update would silently desynchronize the indexes
-- above and, later, the integrity proofs.
CREATE TRIGGER trail_events_bu BEFORE UPDATE ON trail_events BEGIN
    SELECT RAISE(ABORT, 'trail_events is append-only');
END;
