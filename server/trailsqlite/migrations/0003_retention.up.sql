-- Retention (package trailarchive, docs/retention.md): policies, legal holds,
-- and the record of purged sealed events.

-- One rule per (tenant, action); '' means every tenant / every action.
CREATE TABLE trail_retention_policies (
    tenant     TEXT    NOT NULL DEFAULT '',
    action     TEXT    NOT NULL DEFAULT '',
    keep_hours INTEGER NOT NULL CHECK (keep_hours > 0),
    then_do    TEXT    NOT NULL CHECK (then_do IN ('archive', 'delete')),
    updated_at INTEGER NOT NULL,                -- unix microseconds
    PRIMARY KEY (tenant, action)
) WITHOUT ROWID;

-- Legal holds: while a row exists, nothing of the tenant (or of the subject,
-- "type:id", as actor or target) is purged.
CREATE TABLE trail_retention_holds (
    tenant         TEXT    NOT NULL,
    subject        TEXT    NOT NULL DEFAULT '',
    reason         TEXT    NOT NULL DEFAULT '',
    min_keep_hours INTEGER NOT NULL DEFAULT 0,
    since          INTEGER NOT NULL,            -- unix microseconds
    PRIMARY KEY (tenant, subject)
) WITHOUT ROWID;

-- The seqs of sealed events retention removed (trailseal.PurgeRecorder),
-- written in the same transaction as the DELETE. Append-only.
CREATE TABLE trail_seal_purges (
    id        INTEGER PRIMARY KEY,
    log       TEXT    NOT NULL,
    seq_from  INTEGER NOT NULL,
    seq_to    INTEGER NOT NULL,                 -- exclusive
    archive   TEXT    NOT NULL DEFAULT '',      -- the batch's manifest key, '' for delete
    purged_at INTEGER NOT NULL,
    CHECK (seq_to > seq_from)
);
CREATE INDEX trail_seal_purges_log ON trail_seal_purges (log, seq_from);
CREATE TRIGGER trail_seal_purges_bu BEFORE UPDATE ON trail_seal_purges BEGIN
    SELECT RAISE(ABORT, 'trail_seal_purges is append-only');
END;
CREATE TRIGGER trail_seal_purges_bd BEFORE DELETE ON trail_seal_purges BEGIN
    SELECT RAISE(ABORT, 'trail_seal_purges is append-only');
END;
