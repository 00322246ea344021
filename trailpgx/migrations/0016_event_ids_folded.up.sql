-- 016: idempotency folds into the events table, and event_ids goes.
--
-- event_ids (one heap row and one key per event, ~100 B) made an event ID
-- unique across partitions, and located an event by ID alone. Now:
--   * each monthly partition has a UNIQUE index on id. An event's retry
--     carries its ID and its occurred_at, so it meets the first copy in the
--     same partition, where INSERT … ON CONFLICT DO NOTHING (and COPY's
--     unique violation) finds it. The same ID in another month is refused
--     by the seal queue (its key while the first is unsealed, its trigger
--     once it is sealed), and Append then reports it as a duplicate
--     (docs/storage-postgres.md, "Idempotency").
--   * the seal queue is filled by a statement trigger on events itself;
--   * seal_leaves keeps each sealed event's occurred_at, so that proofs,
--     verify and purge find the partition without event_ids (the leaf hash
--     commits to the event, occurred_at included: this column is only a
--     locator, and verify looks an event up by ID alone when it is wrong).
--   * Get and the duplicate checks read events by id through the partitions'
--     id indexes.
--
-- On a large store this migration builds one unique index per partition
-- and rewrites every leaf row (its occurred_at), holding writes to events
-- for the time it takes. To shorten that, build the keys beforehand, while
-- writers run: CREATE UNIQUE INDEX CONCURRENTLY events_pYYYYMM_id ON
-- <schema>.events_pYYYYMM (id), one per partition; the migration then finds
-- them (IF NOT EXISTS).

-- The id key of every existing partition. event_ids kept IDs unique across
-- partitions, so these build without conflict.
--
-- And statistics on the description's words: the description index is
-- partial (0013: WHERE description <> ''), and PostgreSQL keeps no
-- statistics for a partial index's expression, so it guessed that a word
-- matches 0.5 % of a partition's rows (3,561 estimated where 543,330
-- matched, at 10 M events) and read every partition's whole match list:
-- text search in a tenant went from 93-106 ms to 385-1,127 ms p95. With
-- the expression's own statistics the plan of one partition went from 40.9
-- to 1.8 ms. ANALYZE fills them now rather than at autovacuum's next pass.
DO $up$
DECLARE
	part regclass;
	name text;
BEGIN
	FOR part IN SELECT i.inhrelid::regclass FROM pg_inherits i
		WHERE i.inhparent = format('%I.events', @schema_lit@)::regclass LOOP
		name := (SELECT relname FROM pg_class WHERE oid = part);
		EXECUTE format('CREATE UNIQUE INDEX IF NOT EXISTS %I ON %s (id)', name || '_id', part);
		EXECUTE format('CREATE STATISTICS IF NOT EXISTS %I.%I ON (to_tsvector(''simple''::regconfig, description)) FROM %s',
			@schema_lit@, name || '_words', part);
		EXECUTE format('ANALYZE %s', part);
	END LOOP;
END $up$;

-- ensure_partitions, as in 0007, with the id key and the words' statistics
-- on each new partition.
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
			EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (id)', part || '_id', @schema_lit@, part);
			EXECUTE format('CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON %I.%I FOR EACH STATEMENT EXECUTE FUNCTION %I.forbid_change()',
				@schema_lit@, part, @schema_lit@);
			EXECUTE format('CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON %I.%I FOR EACH STATEMENT EXECUTE FUNCTION %I.forbid_change()',
				@schema_lit@, part, @schema_lit@);
			EXECUTE format('CREATE STATISTICS %I.%I (dependencies) ON tenant, actor_id, target_id FROM %I.%I',
				@schema_lit@, part || '_deps', @schema_lit@, part);
			EXECUTE format('CREATE STATISTICS %I.%I ON (to_tsvector(''simple''::regconfig, description)) FROM %I.%I',
				@schema_lit@, part || '_words', @schema_lit@, part);
			n := n + 1;
		EXCEPTION WHEN duplicate_table OR unique_violation OR duplicate_object THEN
			NULL; -- another session created it first
		END;
	END LOOP;
	RETURN n;
END $$;

-- Leaves locate their events. Filled from event_ids for the leaves sealed
-- so far (NULL where the event was purged: its leaf stays for the proofs).
ALTER TABLE @schema@.seal_leaves ADD COLUMN occurred_at timestamptz;
ALTER TABLE @schema@.seal_leaves DISABLE TRIGGER USER;
UPDATE @schema@.seal_leaves l SET occurred_at = i.occurred_at FROM @schema@.event_ids i WHERE i.id = l.event_id;
ALTER TABLE @schema@.seal_leaves ENABLE TRIGGER USER;

-- The seal queue, from the events themselves: every write path (COPY, the
-- single-event INSERT, the capture triggers, any raw INSERT through the
-- parent table) inserts into events, and a writer holds no privilege on a
-- partition.
DROP TRIGGER event_ids_seal_queue ON @schema@.event_ids;
CREATE TRIGGER events_seal_queue AFTER INSERT ON @schema@.events
	REFERENCING NEW TABLE AS new_ids FOR EACH STATEMENT EXECUTE FUNCTION @schema@.seal_queue();

-- capture_sql as in 0009, without event_ids: the captured events go into
-- events alone (the seal queue's trigger is on events now).
CREATE OR REPLACE FUNCTION @schema@.capture_sql(rel oid, op text, args text[], p text[]) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	tenant_col  text   := nullif(args[2], '');
	ignore_cols text[] := args[3]::text[];
	redact_cols text[] := args[4]::text[];
	pk_cols     text[] := args[5]::text[];
	require_ten boolean := args[6] = 'require_tenant';
	src         text;
	join_on     text;
	o_gone      text := 'false';
	n_gone      text := 'false';
	key_expr    text;
	tenant_expr text;
	k           text;
	col         record;
	vo          text;
	vn          text;
	red         text;
	obj         text;
	big         text;
	cond        text;
	elems       text[] := '{}';
	names       text[] := '{}';
BEGIN
	IF op = 'INSERT' THEN
		src := 'trail_new n';
	ELSIF op = 'DELETE' THEN
		src := 'trail_old o';
	ELSE
		FOREACH k IN ARRAY pk_cols LOOP
			join_on := coalesce(join_on || ' AND ', '') || format('o.%1$I = n.%1$I', k);
		END LOOP;
		src := 'trail_old o FULL JOIN trail_new n ON ' || join_on;
		o_gone := format('o.%I IS NULL', pk_cols[1]);
		n_gone := format('n.%I IS NULL', pk_cols[1]);
	END IF;

	FOR col IN SELECT a.attname::text AS aname, t.typlen = -1 AS avarlena
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attname::text <> ALL (ignore_cols)
		ORDER BY a.attname::text COLLATE "C"
	LOOP
		vo := format('to_jsonb(o.%I)', col.aname);
		vn := format('to_jsonb(n.%I)', col.aname);
		red := format('jsonb_build_object(''field'', %L, ''redacted'', true)', col.aname);
		IF op = 'INSERT' THEN
			cond := NULL;
			obj := format('jsonb_build_object(''field'', %L, ''new'', %s)', col.aname, vn);
			big := format('pg_column_size(%s) > 8192', vn);
		ELSIF op = 'DELETE' THEN
			cond := NULL;
			obj := format('jsonb_build_object(''field'', %L, ''old'', %s)', col.aname, vo);
			big := format('pg_column_size(%s) > 8192', vo);
		ELSE
			cond := format('(%s OR %s OR %s IS DISTINCT FROM %s)', o_gone, n_gone, vo, vn);
			obj := format('(jsonb_build_object(''field'', %L) || CASE WHEN %s THEN ''{}''::jsonb ELSE jsonb_build_object(''old'', %s) END || CASE WHEN %s THEN ''{}''::jsonb ELSE jsonb_build_object(''new'', %s) END)',
				col.aname, o_gone, vo, n_gone, vn);
			big := format('(pg_column_size(%s) > 8192 OR pg_column_size(%s) > 8192)', vo, vn);
		END IF;
		IF col.aname = ANY (redact_cols) OR @schema@.capture_redacts(args, col.aname) THEN
			obj := red;
		ELSIF col.avarlena THEN
			obj := format('CASE WHEN %s THEN %s ELSE %s END', big, red, obj);
		END IF;
		IF cond IS NULL THEN
			elems := elems || obj;
			names := names || quote_literal(col.aname);
		ELSE
			elems := elems || format('CASE WHEN %s THEN %s END', cond, obj);
			names := names || format('CASE WHEN %s THEN %L END', cond, col.aname);
		END IF;
	END LOOP;

	FOREACH k IN ARRAY pk_cols LOOP
		key_expr := coalesce(key_expr || ' || '','' || ', '') ||
			format('replace(replace(coalesce((%s)::text, ''''), ''\'', ''\\''), '','', ''\,'')',
				CASE op WHEN 'INSERT' THEN format('n.%I', k) WHEN 'DELETE' THEN format('o.%I', k) ELSE format('coalesce(n.%1$I, o.%1$I)', k) END);
	END LOOP;
	tenant_expr := CASE WHEN tenant_col IS NULL THEN ''''''
		ELSE format('coalesce((%s)::text, '''')',
			CASE op WHEN 'INSERT' THEN format('n.%I', tenant_col) WHEN 'DELETE' THEN format('o.%I', tenant_col) ELSE format('coalesce(n.%1$I, o.%1$I)', tenant_col) END) END;
	tenant_expr := format('coalesce(nullif(%s, ''''), %s)', p[1], tenant_expr);
	IF require_ten THEN
		tenant_expr := format('coalesce(nullif(%s, ''''), %s.capture_error(%L))', tenant_expr, @schema_lit@::regnamespace,
			format('trail capture: table %s requires a tenant: trail.tenant is not set%s', rel::regclass,
				CASE WHEN tenant_col IS NULL THEN '' ELSE format(' and the row''s %s is empty', tenant_col) END));
	END IF;

	RETURN format($q$
		WITH e AS (
			SELECT %2$s.uuid_v7() AS id, %3$s AS tenant, %4$s AS target_id,
				array_remove(ARRAY[%5$s]::jsonb[], NULL) AS changes,
				array_remove(ARRAY[%6$s]::text[], NULL) AS fields
			FROM %1$s
		),
		f AS MATERIALIZED (SELECT * FROM e WHERE cardinality(changes) > 0)
		INSERT INTO %2$s.events (id, occurred_at, recorded_at, tenant, actor_type, actor_id, action,
			target_type, target_id, changes, changed_fields, request_id, source)
		SELECT id, %7$s, %7$s, tenant, %8$s, %9$s, %10$s, %11$s, target_id, to_jsonb(changes), fields, %12$s, 'trigger' FROM f
	$q$, src, @schema_lit@::regnamespace, tenant_expr, key_expr, array_to_string(elems, ', '), array_to_string(names, ', '),
		p[2], p[3], p[4], p[5], p[6], p[7]);
END $fn$;

-- The seal queue's trigger function, as in 0004, refusing an ID that a
-- sealed event already has: with the key per partition, an ID reused with
-- an occurred_at in another month would otherwise be a second event of
-- that ID (an unsealed one is refused by seal_pending's own key). One
-- statement: the check rides the insert (a second statement in the
-- function cost as much again per audited transaction).
CREATE FUNCTION @schema@.seal_refuse(id uuid) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RAISE EXCEPTION 'trail: event ID % is already the ID of another stored event', id
		USING ERRCODE = 'unique_violation',
		      HINT = 'an event''s retry keeps its ID and its occurred_at; a new event needs a new ID';
END $$;
REVOKE ALL ON FUNCTION @schema@.seal_refuse(uuid) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @schema@.seal_queue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	INSERT INTO @schema@.seal_pending (event_id, tenant, occurred_at)
	SELECT n.id, n.tenant, n.occurred_at FROM new_ids n
	WHERE CASE WHEN EXISTS (SELECT 1 FROM @schema@.seal_leaves l WHERE l.event_id = n.id)
		THEN @schema@.seal_refuse(n.id) ELSE true END;
	RETURN NULL;
END $$;

-- purge_events, as in 0005, without event_ids.
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
				EXECUTE format('ALTER TABLE %I.events DETACH PARTITION %s', @schema_lit@, part);
				EXECUTE format('DROP TABLE %s', part);
				n := n + k;
			END IF;
		END LOOP;
	END IF;
	EXECUTE format('WITH d AS (DELETE FROM %1$I.events WHERE recorded_at < $1 AND ($2::text IS NULL OR tenant = $2) RETURNING id),
		q AS (DELETE FROM %1$I.seal_pending q USING d WHERE q.event_id = d.id RETURNING 1),
		r AS (INSERT INTO %1$I.seal_purges (log, seqs, events, cutoff)
			SELECT l.log, range_agg(int8range(l.seq, l.seq + 1)), count(*), $1
			FROM %1$I.seal_leaves l JOIN d ON d.id = l.event_id GROUP BY l.log RETURNING 1)
		SELECT count(*) FROM d', @schema_lit@) INTO k USING p_before, p_tenant;
	n := n + k;
	PERFORM set_config('trail.purge', 'off', true);
	RETURN n;
END $$;

-- purge_event_ids, as in 0006: the months come from the leaves (only sealed
-- events are purged), the rows are found by the partition's id key.
CREATE OR REPLACE FUNCTION @schema@.purge_event_ids(p_ids uuid[], p_archives text[], p_cutoff timestamptz, p_drop boolean DEFAULT true)
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
	FOR lo IN SELECT DISTINCT date_trunc('month', l.occurred_at) FROM unnest(p_ids) u(id)
		JOIN @schema@.seal_leaves l ON l.event_id = u.id WHERE l.occurred_at IS NOT NULL ORDER BY 1 LOOP
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
					EXECUTE format('ALTER TABLE %I.events DETACH PARTITION %s', @schema_lit@, part);
					EXECUTE format('DROP TABLE %s', part);
					n := n + total;
					CONTINUE;
				END IF;
			EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
				NULL; -- rolled back to the block's start: delete the rows instead
			END;
		END IF;
		-- Rows by ID: the partition's id key.
		target := coalesce(part::text, format('%I.events', @schema_lit@));
		EXECUTE format('WITH t AS (SELECT DISTINCT ON (u.id) u.id, u.archive, l.log, l.seq, l.occurred_at
				FROM unnest($1, $2) u(id, archive)
				JOIN %1$I.seal_leaves l ON l.event_id = u.id
				WHERE l.occurred_at >= $3 AND l.occurred_at < $3 + interval ''1 month''),
			d AS (DELETE FROM %2$s p USING t WHERE p.id = t.id AND p.occurred_at = t.occurred_at
				RETURNING p.id),
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

-- Recompile every capture: their compiled statements wrote event_ids.
DO $up$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT t.tgrelid, t.tgargs FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
		WHERE t.tgname = 'trail_capture_insert'
			AND p.pronamespace = @schema_lit@::regnamespace AND p.proname LIKE 'capture\_%\_insert'
	LOOP
		PERFORM @schema@.capture_install(r.tgrelid::regclass, @schema@.capture_tgargs(r.tgargs));
	END LOOP;
END $up$;

DROP TABLE @schema@.event_ids;
