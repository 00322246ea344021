-- 004: tamper evidence (package trailseal): the pending queue, each tenant's
-- Merkle log, its signed checkpoints and the sealer's lease. Events stay
-- append-only: sealing writes only these tables. See docs/verification.md.

-- One row per unsealed event. A trigger on event_ids writes it, in the same
-- statement as the event's ID (every write path, COPY, the single-event
-- INSERT and the capture triggers, claims the ID there first), so an event is
-- queued if and only if it commits, and writers never wait for the sealer.
CREATE TABLE @schema@.seal_pending (
	pos         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_id    uuid NOT NULL UNIQUE,
	tenant      text NOT NULL,
	occurred_at timestamptz NOT NULL
);

CREATE FUNCTION @schema@.seal_queue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	INSERT INTO @schema@.seal_pending (event_id, tenant, occurred_at) SELECT id, tenant, occurred_at FROM new_ids;
	RETURN NULL;
END $$;

CREATE TRIGGER event_ids_seal_queue AFTER INSERT ON @schema@.event_ids
	REFERENCING NEW TABLE AS new_ids FOR EACH STATEMENT EXECUTE FUNCTION @schema@.seal_queue();

-- Each log's leaves: log is the tenant, or '_platform' for platform events.
CREATE TABLE @schema@.seal_leaves (
	log      text   NOT NULL,
	seq      bigint NOT NULL,        -- the tenant sequence number (leaf index)
	event_id uuid   NOT NULL UNIQUE,
	hash     bytea  NOT NULL,        -- tlog.RecordHash of the canonical bytes
	PRIMARY KEY (log, seq)
);

-- The trees' stored hashes, in golang.org/x/mod/sumdb/tlog's layout.
CREATE TABLE @schema@.seal_hashes (
	log  text   NOT NULL,
	idx  bigint NOT NULL,
	hash bytea  NOT NULL,
	PRIMARY KEY (log, idx)
);

CREATE TABLE @schema@.seal_logs (
	log  text PRIMARY KEY,
	size bigint NOT NULL
);

-- The checkpoint history; id orders it.
CREATE TABLE @schema@.seal_checkpoints (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	log        text        NOT NULL,
	size       bigint      NOT NULL,
	root       bytea       NOT NULL,
	note       text        NOT NULL, -- the signed note, verbatim
	created_at timestamptz NOT NULL
);
CREATE INDEX seal_checkpoints_log ON @schema@.seal_checkpoints (log, id);

-- One leader at a time: a lease with expiry and a fencing epoch, on the
-- database's clock. Every sealing transaction checks the epoch it was
-- computed under (no advisory locks).
CREATE TABLE @schema@.seal_leases (
	name       text PRIMARY KEY,
	holder     text        NOT NULL,
	epoch      bigint      NOT NULL,
	expires_at timestamptz NOT NULL
);
