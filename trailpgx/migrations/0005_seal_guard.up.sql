-- 005: guards for the sealed log (0004_seal), and retention that keeps it
-- verifiable.
--
-- The seal tables are written by the owner only (the sealer runs as the
-- owner; writers reach seal_pending through the SECURITY DEFINER queue
-- trigger), and are append-only like events: leaves, stored hashes,
-- checkpoints and purge records never change; a log's size only grows;
-- pending rows are only deleted (by Seal, and by purge_events). Privileges
-- are the guard; the triggers also stop the owner and any role granted too
-- much by mistake. A superuser can still disable triggers: what the Merkle
-- log and its signed checkpoints are for.

CREATE FUNCTION @schema@.seal_forbid_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RAISE EXCEPTION 'trail: the sealed log is append-only: % on %.% is not allowed', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
		USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE FUNCTION @schema@.seal_logs_grow_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NEW.log = OLD.log AND NEW.size >= OLD.size THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION 'trail: a sealed log only grows: % %.% from (%, %) to (%, %) is not allowed',
		TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME, OLD.log, OLD.size, NEW.log, NEW.size
		USING ERRCODE = 'insufficient_privilege';
END $$;

-- The seqs of the sealed events retention removed: one row per log per
-- purge (per dropped partition), the seqs as a multirange (a purge by age removes runs of consecutive seqs, so this
-- stays a few bytes however many events go). The verifier reports a sealed
-- event that is gone as purged when its seq is here, as missing otherwise.
CREATE TABLE @schema@.seal_purges (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	log       text           NOT NULL,
	seqs      int8multirange NOT NULL,
	events    bigint         NOT NULL, -- sealed events removed (the multirange's cardinality)
	cutoff    timestamptz    NOT NULL, -- the purge's cutoff on recorded_at
	purged_at timestamptz    NOT NULL DEFAULT now()
);
CREATE INDEX seal_purges_log ON @schema@.seal_purges (log, id);

DO $$
DECLARE t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['seal_leaves', 'seal_hashes', 'seal_checkpoints', 'seal_purges'] LOOP
		EXECUTE format('CREATE TRIGGER %2$I BEFORE UPDATE OR DELETE ON %1$I.%3$I FOR EACH ROW EXECUTE FUNCTION %1$I.seal_forbid_change()',
			@schema_lit@, t || '_append_only', t);
		EXECUTE format('CREATE TRIGGER %2$I BEFORE TRUNCATE ON %1$I.%3$I FOR EACH STATEMENT EXECUTE FUNCTION %1$I.seal_forbid_change()',
			@schema_lit@, t || '_no_truncate', t);
	END LOOP;
END $$;
CREATE TRIGGER seal_logs_grow_only BEFORE UPDATE ON @schema@.seal_logs
	FOR EACH ROW EXECUTE FUNCTION @schema@.seal_logs_grow_only();
CREATE TRIGGER seal_logs_append_only BEFORE DELETE ON @schema@.seal_logs
	FOR EACH ROW EXECUTE FUNCTION @schema@.seal_forbid_change();
CREATE TRIGGER seal_logs_no_truncate BEFORE TRUNCATE ON @schema@.seal_logs
	FOR EACH STATEMENT EXECUTE FUNCTION @schema@.seal_forbid_change();
-- Pending rows leave by DELETE only (Seal, purge_events).
CREATE TRIGGER seal_pending_no_update BEFORE UPDATE ON @schema@.seal_pending
	FOR EACH ROW EXECUTE FUNCTION @schema@.seal_forbid_change();
CREATE TRIGGER seal_pending_no_truncate BEFORE TRUNCATE ON @schema@.seal_pending
	FOR EACH STATEMENT EXECUTE FUNCTION @schema@.seal_forbid_change();

-- Nobody but the owner reads or writes the seal tables; the queue trigger
-- function runs as the owner (firing a trigger needs no EXECUTE privilege).
REVOKE ALL ON @schema@.seal_pending, @schema@.seal_leaves, @schema@.seal_hashes, @schema@.seal_logs,
	@schema@.seal_checkpoints, @schema@.seal_leases, @schema@.seal_purges FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@.seal_queue(), @schema@.seal_forbid_change(), @schema@.seal_logs_grow_only() FROM PUBLIC;

-- purge_events, as in 0001, and in the same statement: records the seqs of
-- the sealed events it removes in seal_purges (per log), and drops the
-- pending rows of the unsealed ones. Leaves and stored hashes stay, so every
-- checkpoint still verifies over the purged range.
CREATE OR REPLACE FUNCTION @schema@.purge_events(p_before timestamptz, p_tenant text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET timezone = 'UTC' AS $$
DECLARE
	n bigint := 0;
	k bigint;
	all_old boolean;
	part regclass;
BEGIN
	IF p_before IS NULL THEN
		RAISE EXCEPTION 'trail: purge_events: before is required' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM set_config('trail.purge', 'on', true);
	IF p_tenant IS NULL THEN
		FOR part IN SELECT i.inhrelid::regclass FROM pg_inherits i
			WHERE i.inhparent = format('%I.events', @schema_lit@)::regclass ORDER BY 1 LOOP
			EXECUTE format('SELECT count(*), coalesce(bool_and(recorded_at < %L), false) FROM %s', p_before, part)
				INTO k, all_old;
			IF all_old THEN
				EXECUTE format('INSERT INTO %1$I.seal_purges (log, seqs, events, cutoff)
					SELECT l.log, range_agg(int8range(l.seq, l.seq + 1)), count(*), %3$L
					FROM %1$I.seal_leaves l JOIN %2$s p ON p.id = l.event_id GROUP BY l.log', @schema_lit@, part, p_before);
				EXECUTE format('DELETE FROM %I.seal_pending q USING %s p WHERE q.event_id = p.id', @schema_lit@, part);
				EXECUTE format('DELETE FROM %I.event_ids e USING %s p WHERE e.id = p.id', @schema_lit@, part);
				EXECUTE format('ALTER TABLE %I.events DETACH PARTITION %s', @schema_lit@, part);
				EXECUTE format('DROP TABLE %s', part);
				n := n + k;
			END IF;
		END LOOP;
	END IF;
	EXECUTE format('WITH d AS (DELETE FROM %1$I.events WHERE recorded_at < $1 AND ($2::text IS NULL OR tenant = $2) RETURNING id),
		i AS (DELETE FROM %1$I.event_ids e USING d WHERE e.id = d.id RETURNING 1),
		q AS (DELETE FROM %1$I.seal_pending q USING d WHERE q.event_id = d.id RETURNING 1),
		r AS (INSERT INTO %1$I.seal_purges (log, seqs, events, cutoff)
			SELECT l.log, range_agg(int8range(l.seq, l.seq + 1)), count(*), $1
			FROM %1$I.seal_leaves l JOIN d ON d.id = l.event_id GROUP BY l.log RETURNING 1)
		SELECT count(*) FROM i', @schema_lit@) INTO k USING p_before, p_tenant;
	n := n + k;
	PERFORM set_config('trail.purge', 'off', true);
	RETURN n;
END $$;
REVOKE ALL ON FUNCTION @schema@.purge_events(timestamptz, text) FROM PUBLIC;
