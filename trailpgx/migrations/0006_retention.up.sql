-- 006: retention (package server/trailarchive, docs/retention.md): policies,
-- legal holds, the archive batch of each purge, and purge_event_ids, the
-- controlled delete path by event ID that retention runs use.

-- One rule per (tenant, action); '' means every tenant / every action.
CREATE TABLE @schema@.retention_policies (
	tenant     text        NOT NULL DEFAULT '',
	action     text        NOT NULL DEFAULT '',
	keep_hours bigint      NOT NULL CHECK (keep_hours > 0),
	then_do    text        NOT NULL CHECK (then_do IN ('archive', 'delete')),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant, action)
);

-- Legal holds: while a row exists, nothing of the tenant (or of the subject,
-- "type:id", as actor or target) is purged. A purge locks this table IN SHARE
-- MODE and re-reads it in its own transaction, so a hold placed during a run
-- waits for at most one purge transaction and then stops the next.
CREATE TABLE @schema@.retention_holds (
	tenant         text        NOT NULL,
	subject        text        NOT NULL DEFAULT '',
	reason         text        NOT NULL DEFAULT '',
	min_keep_hours bigint      NOT NULL DEFAULT 0 CHECK (min_keep_hours >= 0),
	since          timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant, subject)
);

-- Owner only, like the seal tables: retention runs as the owner.
REVOKE ALL ON @schema@.retention_policies, @schema@.retention_holds FROM PUBLIC;

-- The manifest key of the archive batch holding a purged range ('' when the
-- events were deleted without an archive, and for purge_events).
ALTER TABLE @schema@.seal_purges ADD COLUMN archive text NOT NULL DEFAULT '';

-- The append-only guards on events and event_ids fire once per statement
-- instead of once per row: the same refusal (any UPDATE, and any DELETE
-- outside a purge function, even one that matches no row), without a
-- PL/pgSQL call per deleted row, which made a purge's deletes cost several
-- times the deletes themselves. Statement triggers are not cloned onto
-- partitions (a statement naming a partition fires only the partition's), so
-- every partition gets its own, and ensure_partitions adds it to new ones.
DROP TRIGGER event_ids_append_only ON @schema@.event_ids;
CREATE TRIGGER event_ids_append_only BEFORE UPDATE OR DELETE ON @schema@.event_ids
	FOR EACH STATEMENT EXECUTE FUNCTION @schema@.forbid_change();
DROP TRIGGER events_append_only ON @schema@.events; -- and its clones on the partitions
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON @schema@.events
	FOR EACH STATEMENT EXECUTE FUNCTION @schema@.forbid_change();
DO $$
DECLARE part regclass;
BEGIN
	FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = format('%I.events', @schema_lit@)::regclass LOOP
		EXECUTE format('CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %I.forbid_change()',
			part, @schema_lit@);
	END LOOP;
END $$;

-- ensure_partitions, as in 0001, adding both statement guards to each new
-- partition (grants are kept by CREATE OR REPLACE).
CREATE OR REPLACE FUNCTION @schema@.ensure_partitions(months timestamptz[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET timezone = 'UTC'
SET lock_timeout = '5s' AS $$
DECLARE
	m timestamptz;
	lo timestamptz;
	part text;
	n integer := 0;
BEGIN
	FOREACH m IN ARRAY months LOOP
		CONTINUE WHEN m IS NULL;
		lo := date_trunc('month', m);
		part := 'events_p' || to_char(lo, 'YYYYMM');
		CONTINUE WHEN to_regclass(format('%I.%I', @schema_lit@, part)) IS NOT NULL;
		BEGIN
			EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.events FOR VALUES FROM (%L) TO (%L)',
				@schema_lit@, part, @schema_lit@, lo, lo + interval '1 month');
			EXECUTE format('CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON %I.%I FOR EACH STATEMENT EXECUTE FUNCTION %I.forbid_change()',
				@schema_lit@, part, @schema_lit@);
			EXECUTE format('CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON %I.%I FOR EACH STATEMENT EXECUTE FUNCTION %I.forbid_change()',
				@schema_lit@, part, @schema_lit@);
			n := n + 1;
		EXCEPTION WHEN duplicate_table OR unique_violation THEN
			NULL; -- another session created it first
		END;
	END LOOP;
	RETURN n;
END $$;

-- purge_event_ids removes the sealed events named by p_ids, with their
-- event_ids and seal_pending rows, and records in seal_purges, in the same
-- transaction, the seqs of the events it actually removed: one row per
-- partition, log and archive (p_archives[i] is the manifest key of p_ids[i],
-- '' for a delete). Unsealed events (no leaf) and IDs already gone are
-- skipped. It returns the number of events removed.
--
-- It works partition by partition (months of occurred_at). When the IDs
-- cover every row of a partition, checked under a SHARE ROW EXCLUSIVE lock
-- that keeps inserts out, and p_drop is true, the partition is detached and
-- dropped instead of deleted row by row: no dead tuples, no vacuum. DETACH
-- locks the events table ACCESS EXCLUSIVE until the caller commits, so it
-- comes last, and lock_timeout bounds how long writers queue behind it; when
-- a lock is not granted in time (or a deadlock with a writer into that month
-- is detected) the partition's rows are deleted by ID instead.
CREATE FUNCTION @schema@.purge_event_ids(p_ids uuid[], p_archives text[], p_cutoff timestamptz, p_drop boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET timezone = 'UTC'
SET lock_timeout = '2s' AS $$
DECLARE
	n bigint := 0;
	k bigint;
	total bigint;
	mine bigint;
	lo timestamptz;
	part regclass;
	target text;
BEGIN
	IF p_cutoff IS NULL OR p_ids IS NULL OR p_archives IS NULL
		OR cardinality(p_ids) <> cardinality(p_archives) THEN
		RAISE EXCEPTION 'trail: purge_event_ids: ids and archives of the same length, and a cutoff, are required'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM set_config('trail.purge', 'on', true);
	FOR lo IN SELECT DISTINCT date_trunc('month', i.occurred_at) FROM unnest(p_ids) u(id)
		JOIN @schema@.event_ids i ON i.id = u.id ORDER BY 1 LOOP
		part := NULL;
		SELECT i.inhrelid::regclass INTO part FROM pg_inherits i
			WHERE i.inhparent = format('%I.events', @schema_lit@)::regclass
			AND i.inhrelid = to_regclass(format('%I.%I', @schema_lit@, 'events_p' || to_char(lo, 'YYYYMM')));
		IF part IS NOT NULL AND p_drop THEN
			BEGIN
				EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', part);
				EXECUTE format('SELECT count(*), count(t.id) FROM %2$s p LEFT JOIN
					(SELECT DISTINCT u.id FROM unnest($1) u(id) JOIN %1$I.seal_leaves l ON l.event_id = u.id) t ON t.id = p.id',
					@schema_lit@, part) INTO total, mine USING p_ids;
				IF total > 0 AND total = mine THEN
					EXECUTE format('INSERT INTO %1$I.seal_purges (log, seqs, events, cutoff, archive)
						SELECT l.log, range_agg(int8range(l.seq, l.seq + 1)), count(*), $3, t.archive
						FROM %2$s p
						JOIN (SELECT DISTINCT ON (u.id) u.id, u.archive FROM unnest($1, $2) u(id, archive)) t ON t.id = p.id
						JOIN %1$I.seal_leaves l ON l.event_id = p.id
						GROUP BY l.log, t.archive', @schema_lit@, part) USING p_ids, p_archives, p_cutoff;
					EXECUTE format('DELETE FROM %I.seal_pending q USING %s p WHERE q.event_id = p.id', @schema_lit@, part);
					EXECUTE format('DELETE FROM %I.event_ids e USING %s p WHERE e.id = p.id', @schema_lit@, part);
					EXECUTE format('ALTER TABLE %I.events DETACH PARTITION %s', @schema_lit@, part);
					EXECUTE format('DROP TABLE %s', part);
					n := n + total;
					CONTINUE;
				END IF;
			EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
				NULL; -- rolled back to the block's start: delete the rows instead
			END;
		END IF;
		-- Rows by ID: through event_ids (tenant, occurred_at, id), which the
		-- events_tenant_time index of the partition answers.
		target := coalesce(part::text, format('%I.events', @schema_lit@));
		EXECUTE format('WITH t AS (SELECT DISTINCT ON (u.id) u.id, u.archive, l.log, l.seq, i.tenant, i.occurred_at
				FROM unnest($1, $2) u(id, archive)
				JOIN %1$I.seal_leaves l ON l.event_id = u.id
				JOIN %1$I.event_ids i ON i.id = u.id
				WHERE i.occurred_at >= $3 AND i.occurred_at < $3 + interval ''1 month''),
			d AS (DELETE FROM %2$s p USING t WHERE p.tenant = t.tenant AND p.occurred_at = t.occurred_at AND p.id = t.id
				RETURNING p.id),
			x AS (DELETE FROM %1$I.event_ids e USING d WHERE e.id = d.id RETURNING 1),
			q AS (DELETE FROM %1$I.seal_pending q USING d WHERE q.event_id = d.id RETURNING 1),
			r AS (INSERT INTO %1$I.seal_purges (log, seqs, events, cutoff, archive)
				SELECT t.log, range_agg(int8range(t.seq, t.seq + 1)), count(*), $4, t.archive
				FROM t JOIN d ON d.id = t.id GROUP BY t.log, t.archive RETURNING 1)
			SELECT count(*) FROM d', @schema_lit@, target) INTO k USING p_ids, p_archives, lo, p_cutoff;
		n := n + k;
	END LOOP;
	PERFORM set_config('trail.purge', 'off', true);
	RETURN n;
END $$;
REVOKE ALL ON FUNCTION @schema@.purge_event_ids(uuid[], text[], timestamptz, boolean) FROM PUBLIC;
