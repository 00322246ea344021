-- 010: deployment heads (trailseal.Head): one signed statement over every
-- log's newest checkpoint, signed by the sealer after checkpoints. See
-- docs/verification.md ("The deployment head"). Append-only like the
-- checkpoints (0005); id orders the history.
CREATE TABLE @schema@.seal_heads (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	logs       bigint      NOT NULL, -- number of entries
	root       bytea       NOT NULL, -- root of the entries' tree
	entries    text        NOT NULL, -- the entries' lines, "log size root\n" each, sorted
	note       text        NOT NULL, -- the signed note, verbatim
	created_at timestamptz NOT NULL  -- the note's time line
);
CREATE TRIGGER seal_heads_append_only BEFORE UPDATE OR DELETE ON @schema@.seal_heads
	FOR EACH ROW EXECUTE FUNCTION @schema@.seal_forbid_change();
CREATE TRIGGER seal_heads_no_truncate BEFORE TRUNCATE ON @schema@.seal_heads
	FOR EACH STATEMENT EXECUTE FUNCTION @schema@.seal_forbid_change();
REVOKE ALL ON @schema@.seal_heads FROM PUBLIC;
