-- Tamper evidence (package trailseal): the pending queue, each tenant's
-- Merkle log, its signed checkpoints and the sealer's lease. Events stay
-- append-only: sealing writes only these tables. See docs/verification.md.

-- One row per unsealed event, written by Append in the same transaction as
-- the event. seq is the event's trail_events.seq, so the queue's order is
-- the append order; id guards against a reused rowid.
CREATE TABLE trail_seal_pending (
    seq INTEGER PRIMARY KEY,
    id  BLOB    NOT NULL
);

-- Each log's leaves: log is the tenant, or '_platform' for platform events.
CREATE TABLE trail_seal_leaves (
    log      TEXT    NOT NULL,
    seq      INTEGER NOT NULL,        -- the tenant sequence number (leaf index)
    event_id BLOB    NOT NULL UNIQUE,
    hash     BLOB    NOT NULL,        -- tlog.RecordHash of the canonical bytes
    PRIMARY KEY (log, seq)
) WITHOUT ROWID;

-- The trees' stored hashes, in golang.org/x/mod/sumdb/tlog's layout.
CREATE TABLE trail_seal_hashes (
    log  TEXT    NOT NULL,
    idx  INTEGER NOT NULL,
    hash BLOB    NOT NULL,
    PRIMARY KEY (log, idx)
) WITHOUT ROWID;

CREATE TABLE trail_seal_logs (
    log  TEXT    PRIMARY KEY,
    size INTEGER NOT NULL
) WITHOUT ROWID;

-- The checkpoint history; id orders it.
CREATE TABLE trail_seal_checkpoints (
    id         INTEGER PRIMARY KEY,
    log        TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    root       BLOB    NOT NULL,
    note       TEXT    NOT NULL,      -- the signed note, verbatim
    created_at INTEGER NOT NULL       -- unix microseconds
);
CREATE INDEX trail_seal_checkpoints_log ON trail_seal_checkpoints (log, id);

-- One leader at a time: a lease with expiry and a fencing epoch. Every
-- sealing transaction checks the epoch it was computed under.
CREATE TABLE trail_seal_leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL       -- unix microseconds
) WITHOUT ROWID;
