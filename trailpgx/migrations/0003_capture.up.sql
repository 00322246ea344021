-- 003: trigger capture. EnableCapture installs three statement-level AFTER
-- triggers (INSERT, UPDATE, DELETE) with transition tables on a business
-- table; they all call capture(), which turns every changed row of the
-- statement into one event with ONE INSERT … SELECT: no round trip and no
-- PL/pgSQL call per row. The triggers' arguments carry the table's options,
-- so a statement reads no registry; pg_trigger is the registry (ListCaptures).
--
-- Placeholders as in 0001.

-- uuid_v7 returns a UUIDv7 (RFC 9562): the Unix time in milliseconds of
-- clock_timestamp() in the first 48 bits, then random bits from
-- gen_random_uuid() with the version nibble turned from 4 into 7 (bits 52
-- and 53 set) and its variant kept. PostgreSQL 15 has no uuidv7(). No SET
-- clause: it would stop the planner from inlining the function into the
-- capture statement (a function call per row instead of an expression).
CREATE FUNCTION @schema@.uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
	SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
		PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
		FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;
GRANT EXECUTE ON FUNCTION @schema@.uuid_v7() TO @writer@;

-- capture_error raises msg; SQL expressions call it where a row lacks
-- something the capture requires (a tenant).
CREATE FUNCTION @schema@.capture_error(msg text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RAISE EXCEPTION '%', msg USING ERRCODE = 'not_null_violation',
		HINT = 'begin the transaction with trailpgx.BeginTx or trailsql.BeginTx and trail.WithTenant, or SELECT set_config(''trail.tenant'', ''<tenant>'', true)';
END $$;

-- capture is the trigger function. Arguments (set by EnableCapture):
--   0 resource name (the action prefix and target type, e.g. "users")
--   1 tenant column, '' for none
--   2 ignored columns, a text[] literal
--   3 redacted columns, a text[] literal
--   4 primary-key columns in key order, a text[] literal
--   5 'require_tenant' or ''
-- Actor, tenant and request ID come from the transaction's settings
-- trail.actor ("type:id"), trail.tenant and trail.request_id, which BeginTx
-- sets. Without trail.actor the actor is {system, "db:" || session_user}:
-- the login role that made the change. Without trail.tenant the tenant is
-- the row's tenant column, else '' (a platform event) or, with
-- require_tenant, an error.
-- SECURITY DEFINER: the business role needs no privilege on events.
-- jit = off: the statement is cheap per row, and compiling it costs more
-- (over a second at 10,000 rows) than it saves.
CREATE FUNCTION @schema@.capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
DECLARE
	resource    text   := TG_ARGV[0];
	tenant_col  text   := nullif(TG_ARGV[1], '');
	ignore_cols text[] := TG_ARGV[2]::text[];
	redact_cols text[] := TG_ARGV[3]::text[];
	pk_cols     text[] := TG_ARGV[4]::text[];
	require_ten boolean := TG_ARGV[5] = 'require_tenant';
	actor       text   := coalesce(current_setting('trail.actor', true), '');
	s_tenant    text   := coalesce(current_setting('trail.tenant', true), '');
	request     text   := coalesce(current_setting('trail.request_id', true), '');
	a_type      text;
	a_id        text;
	ts          timestamptz := clock_timestamp();
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
	IF actor = '' THEN
		a_type := 'system';
		a_id := 'db:' || session_user;
	ELSE
		a_type := split_part(actor, ':', 1);
		a_id := substr(actor, length(a_type) + 2);
		IF position(':' IN actor) = 0 OR a_type NOT IN ('user', 'service', 'system', 'anonymous') OR a_id = '' THEN
			RAISE EXCEPTION 'trail capture: trail.actor % is not type:id with type user, service, system or anonymous', quote_literal(actor)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END IF;

	-- The month's partition normally exists (Migrate and the append path keep
	-- months ahead); create it only when missing.
	IF to_regclass(format('%I.%I', @schema_lit@, 'events_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYYMM'))) IS NULL THEN
		PERFORM @schema@.ensure_partitions(ARRAY[ts]);
	END IF;

	-- The rows: o is the old row, n the new one. Old and new rows of an
	-- update are paired by primary key. A row whose key changed pairs with
	-- nothing: it yields one event on the old key (old → absent) and one on
	-- the new key (absent → new).
	IF TG_OP = 'INSERT' THEN
		src := 'trail_new n';
	ELSIF TG_OP = 'DELETE' THEN
		src := 'trail_old o';
	ELSE
		FOREACH k IN ARRAY pk_cols LOOP
			join_on := coalesce(join_on || ' AND ', '') || format('o.%1$I = n.%1$I', k);
		END LOOP;
		src := 'trail_old o FULL JOIN trail_new n ON ' || join_on;
		o_gone := format('o.%I IS NULL', pk_cols[1]);
		n_gone := format('n.%I IS NULL', pk_cols[1]);
	END IF;

	-- One expression per captured column, generated here once per statement
	-- from the catalog and sorted by column name (byte order): per row there
	-- is no set-returning function, sort or aggregate, only expressions.
	-- Values are jsonb (to_jsonb), so numbers, booleans and NULL keep their
	-- types. Redacted columns, and values over 8 KiB as jsonb, become
	-- {"field", "redacted": true}. Columns added to the table later are
	-- picked up by the next statement.
	FOR col IN SELECT a.attname::text AS aname, t.typlen = -1 AS avarlena
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.attname::text <> ALL (ignore_cols)
		ORDER BY a.attname::text COLLATE "C"
	LOOP
		vo := format('to_jsonb(o.%I)', col.aname);
		vn := format('to_jsonb(n.%I)', col.aname);
		red := format('jsonb_build_object(''field'', %L, ''redacted'', true)', col.aname);
		IF TG_OP = 'INSERT' THEN
			cond := NULL;
			obj := format('jsonb_build_object(''field'', %L, ''new'', %s)', col.aname, vn);
			big := format('pg_column_size(%s) > 8192', vn);
		ELSIF TG_OP = 'DELETE' THEN
			cond := NULL;
			obj := format('jsonb_build_object(''field'', %L, ''old'', %s)', col.aname, vo);
			big := format('pg_column_size(%s) > 8192', vo);
		ELSE
			cond := format('(%s OR %s OR %s IS DISTINCT FROM %s)', o_gone, n_gone, vo, vn);
			obj := format('(jsonb_build_object(''field'', %L) || CASE WHEN %s THEN ''{}''::jsonb ELSE jsonb_build_object(''old'', %s) END || CASE WHEN %s THEN ''{}''::jsonb ELSE jsonb_build_object(''new'', %s) END)',
				col.aname, o_gone, vo, n_gone, vn);
			big := format('(pg_column_size(%s) > 8192 OR pg_column_size(%s) > 8192)', vo, vn);
		END IF;
		IF col.aname = ANY (redact_cols) THEN
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

	-- The event's object: its key and tenant come from the new row, else the
	-- old one. Composite keys are joined with ',' in key order; ',' and '\'
	-- inside a value are escaped with '\'.
	FOREACH k IN ARRAY pk_cols LOOP
		key_expr := coalesce(key_expr || ' || '','' || ', '') ||
			format('replace(replace(coalesce((%s)::text, ''''), ''\'', ''\\''), '','', ''\,'')',
				CASE TG_OP WHEN 'INSERT' THEN format('n.%I', k) WHEN 'DELETE' THEN format('o.%I', k) ELSE format('coalesce(n.%1$I, o.%1$I)', k) END);
	END LOOP;
	tenant_expr := CASE WHEN tenant_col IS NULL THEN ''''''
		ELSE format('coalesce((%s)::text, '''')',
			CASE TG_OP WHEN 'INSERT' THEN format('n.%I', tenant_col) WHEN 'DELETE' THEN format('o.%I', tenant_col) ELSE format('coalesce(n.%1$I, o.%1$I)', tenant_col) END) END;
	tenant_expr := format('coalesce(nullif($1, ''''), %s)', tenant_expr);
	IF require_ten THEN
		tenant_expr := format('coalesce(nullif(%s, ''''), %s.capture_error(%L))', tenant_expr, @schema_lit@::regnamespace,
			format('trail capture: table %s requires a tenant: trail.tenant is not set%s', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
				CASE WHEN tenant_col IS NULL THEN '' ELSE format(' and the row''s %s is empty', tenant_col) END));
	END IF;

	-- One statement for all of the statement's rows. An update that changed
	-- no captured column records nothing.
	EXECUTE format($q$
		WITH e AS (
			SELECT %2$s.uuid_v7() AS id, %3$s AS tenant, %4$s AS target_id,
				array_remove(ARRAY[%5$s]::jsonb[], NULL) AS changes,
				array_remove(ARRAY[%6$s]::text[], NULL) AS fields
			FROM %1$s
		),
		f AS MATERIALIZED (SELECT * FROM e WHERE cardinality(changes) > 0),
		ids AS (INSERT INTO %2$s.event_ids (id, occurred_at, tenant) SELECT id, $2, tenant FROM f)
		INSERT INTO %2$s.events (id, occurred_at, recorded_at, tenant, actor_type, actor_id, action,
			target_type, target_id, changes, changed_fields, request_id, source)
		SELECT id, $2, $2, tenant, $3, $4, $5, $6, target_id, to_jsonb(changes), fields, $7, 'trigger' FROM f
	$q$, src, @schema_lit@::regnamespace, tenant_expr, key_expr, array_to_string(elems, ', '), array_to_string(names, ', '))
	USING s_tenant, ts, a_type, a_id, resource || '.' || lower(TG_OP), resource, request;
	RETURN NULL;
END $fn$;

REVOKE ALL ON FUNCTION @schema@.capture(), @schema@.capture_error(text) FROM PUBLIC;
-- CREATE TRIGGER needs EXECUTE on the function; firing does not.
GRANT EXECUTE ON FUNCTION @schema@.capture() TO @writer@;
