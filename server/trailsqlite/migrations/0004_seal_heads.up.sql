-- Deployment heads (trailseal.Head): one signed statement over every log's
-- newest checkpoint, signed by the sealer after checkpoints. See
-- docs/verification.md ("The deployment head"). id orders the history.
CREATE TABLE trail_seal_heads (
    id         INTEGER PRIMARY KEY,
    logs       INTEGER NOT NULL,      -- number of entries
    root       BLOB    NOT NULL,      -- root of the entries' tree
    entries    TEXT    NOT NULL,      -- the entries' lines, "log size root\n" each, sorted
    note       TEXT    NOT NULL,      -- the signed note, verbatim
    created_at INTEGER NOT NULL       -- unix microseconds (the note's time line)
);
