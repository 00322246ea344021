-- 003: trigger capture. EnableCapture installs three statement-level AFTER
-- triggers (INSERT, UPDATE, DELETE) with transition tables on a business
-- table. Each turns every changed row of the statement into one event with
-- ONE INSERT … SELECT: no round trip and no PL/pgSQL call per row. The
-- triggers' arguments carry the table's options; pg_trigger is the registry
-- (ListCaptures).
--
-- capture_sql writes that statement for a table and an operation.
-- capture_install compiles it into a function per table and operation
-- (capture_<oid>_<op>), so that PL/pgSQL plans it once per session instead
-- of once per statement (EXECUTE plans every time: about 4x slower on a
-- one-row statement). The compiled function checks the table's columns
-- first; after an ALTER TABLE it falls back to capture_sql and EXECUTE, so
-- a schema change never breaks the business writes. capture() is the same
-- fallback as a trigger function of its own.
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

-- capture_context reads the transaction's settings: trail.actor
-- ("type:id"), trail.tenant and trail.request_id, which BeginTx sets.
-- Without trail.actor the actor is {system, "db:" || session_user}: the
-- login role that made the change. A malformed trail.actor is an error,
-- never someone else. It also makes sure the month's partition exists
-- (Migrate and the append path keep months ahead, so this is a catalog
-- lookup).
CREATE FUNCTION @schema@.capture_context(ts timestamptz, OUT a_type text, OUT a_id text, OUT tenant text, OUT request text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	actor text := coalesce(current_setting('trail.actor', true), '');
BEGIN
	tenant := coalesce(current_setting('trail.tenant', true), '');
	request := coalesce(current_setting('trail.request_id', true), '');
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
	IF to_regclass(format('%I.%I', @schema_lit@, 'events_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYYMM'))) IS NULL THEN
		PERFORM @schema@.ensure_partitions(ARRAY[ts]);
	END IF;
END $fn$;

-- capture_signature identifies a table's live columns (number, name, type):
-- a compiled capture function is valid while it is unchanged. PL/pgSQL, not
-- SQL: PostgreSQL 15 plans a SQL function's body on every call (0.5 ms
-- here), PL/pgSQL once per session.
CREATE FUNCTION @schema@.capture_signature(rel oid) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN (SELECT coalesce(string_agg(attnum || ':' || attname || ':' || atttypid, ',' ORDER BY attnum), '')
		FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped);
END $$;

-- capture_sql returns the statement that records the events of one
-- statement on table rel. op is INSERT, UPDATE or DELETE; args are the
-- trigger's arguments (TG_ARGV[0:5]: TG_ARGV itself starts at 0):
--   1 resource name (the action prefix and target type, e.g. "users")
--   2 tenant column, '' for none
--   3 ignored columns, a text[] literal
--   4 redacted columns, a text[] literal
--   5 primary-key columns in key order, a text[] literal
--   6 'require_tenant' or ''
-- p names the statement's inputs: $1…$7 for EXECUTE … USING, or PL/pgSQL
-- variables in a compiled function: tenant setting, time, actor type, actor
-- ID, action, resource, request ID.
--
-- Old and new rows of an update are paired by primary key. A row whose key
-- changed pairs with nothing: it yields one event on the old key (old →
-- absent) and one on the new key (absent → new).
--
-- One expression per captured column, sorted by column name (byte order):
-- per row there is no set-returning function, sort or aggregate. Values are
-- jsonb (to_jsonb), so numbers, booleans and NULL keep their types.
-- Redacted columns, and values over 8 KiB as jsonb, become {"field",
-- "redacted": true}. An update that changed no captured column records
-- nothing. Tenant: trail.tenant, else the row's tenant column, else '' (or,
-- with require_tenant, an error). Composite keys are joined with ',' in key
-- order; ',' and '\' inside a value are escaped with '\'.
CREATE FUNCTION @schema@.capture_sql(rel oid, op text, args text[], p text[]) RETURNS text
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
		f AS MATERIALIZED (SELECT * FROM e WHERE cardinality(changes) > 0),
		ids AS (INSERT INTO %2$s.event_ids (id, occurred_at, tenant) SELECT id, %7$s, tenant FROM f)
		INSERT INTO %2$s.events (id, occurred_at, recorded_at, tenant, actor_type, actor_id, action,
			target_type, target_id, changes, changed_fields, request_id, source)
		SELECT id, %7$s, %7$s, tenant, %8$s, %9$s, %10$s, %11$s, target_id, to_jsonb(changes), fields, %12$s, 'trigger' FROM f
	$q$, src, @schema_lit@::regnamespace, tenant_expr, key_expr, array_to_string(elems, ', '), array_to_string(names, ', '),
		p[2], p[3], p[4], p[5], p[6], p[7]);
END $fn$;

-- capture is the generic trigger function: it writes the statement with
-- capture_sql and runs it with EXECUTE (planned each time). The compiled
-- per-table functions fall back to the same path after a schema change.
-- SECURITY DEFINER (here and in the compiled functions): the business role
-- needs no privilege on events. jit = off: compiling the statement costs
-- more (over a second at 10,000 rows) than it saves.
CREATE FUNCTION @schema@.capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
DECLARE
	ts timestamptz := clock_timestamp();
	c  record;
BEGIN
	c := @schema@.capture_context(ts);
	EXECUTE @schema@.capture_sql(TG_RELID, TG_OP, TG_ARGV[0:5], ARRAY['$1', '$2', '$3', '$4', '$5', '$6', '$7'])
	USING c.tenant, ts, c.a_type, c.a_id, TG_ARGV[0] || '.' || lower(TG_OP), TG_ARGV[0], c.request;
	RETURN NULL;
END $fn$;

-- capture_install compiles the capture of table rel (with the trigger
-- arguments args) into three functions capture_<oid>_insert|update|delete
-- owned by Trail's owner, and returns their names, for CREATE TRIGGER.
-- capture_uninstall drops them. EnableCapture and DisableCapture call them in
-- their transaction.
CREATE FUNCTION @schema@.capture_install(rel regclass, args text[]) RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	op    text;
	fname text;
	out   text[] := '{}';
	vars  text[] := ARRAY['v_tenant', 'v_ts', 'v_atype', 'v_aid', 'v_action', 'v_resource', 'v_request'];
BEGIN
	IF array_length(args, 1) IS DISTINCT FROM 6 THEN
		RAISE EXCEPTION 'trail capture: capture_install needs 6 arguments' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOREACH op IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
		fname := format('%I.%I', @schema_lit@, 'capture_' || rel::oid || '_' || lower(op));
		EXECUTE format($def$
			CREATE OR REPLACE FUNCTION %1$s() RETURNS trigger
			LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $body$
			DECLARE
				v_ts       timestamptz := clock_timestamp();
				c          record;
				v_tenant   text;
				v_atype    text;
				v_aid      text;
				v_request  text;
				v_action   text := %2$L;
				v_resource text := %3$L;
			BEGIN
				c := %4$s.capture_context(v_ts);
				v_tenant := c.tenant; v_atype := c.a_type; v_aid := c.a_id; v_request := c.request;
				IF %4$s.capture_signature(TG_RELID) IS DISTINCT FROM %5$L THEN
					-- The table changed since capture was enabled: take the general path.
					EXECUTE %4$s.capture_sql(TG_RELID, TG_OP, TG_ARGV[0:5], ARRAY['$1', '$2', '$3', '$4', '$5', '$6', '$7'])
					USING v_tenant, v_ts, v_atype, v_aid, v_action, v_resource, v_request;
				ELSE
					%6$s;
				END IF;
				RETURN NULL;
			END $body$
		$def$, fname, args[1] || '.' || lower(op), args[1], @schema_lit@::regnamespace,
			@schema@.capture_signature(rel), @schema@.capture_sql(rel, op, args, vars));
		EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', fname);
		-- CREATE TRIGGER, run by the table's owner, needs EXECUTE.
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s() TO %I', fname, @writer_lit@);
		out := out || fname;
	END LOOP;
	RETURN out;
END $fn$;

CREATE FUNCTION @schema@.capture_uninstall(rel regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	op text;
BEGIN
	FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
		EXECUTE format('DROP FUNCTION IF EXISTS %I.%I()', @schema_lit@, 'capture_' || rel::oid || '_' || op);
	END LOOP;
END $fn$;

REVOKE ALL ON FUNCTION @schema@.capture(), @schema@.capture_error(text), @schema@.capture_context(timestamptz),
	@schema@.capture_signature(oid), @schema@.capture_sql(oid, text, text[], text[]),
	@schema@.capture_install(regclass, text[]), @schema@.capture_uninstall(regclass) FROM PUBLIC;
-- Whoever enables capture (a table's owner) compiles it; CREATE TRIGGER
-- needs EXECUTE on the trigger function, firing does not.
GRANT EXECUTE ON FUNCTION @schema@.capture(), @schema@.capture_install(regclass, text[]),
	@schema@.capture_uninstall(regclass) TO @writer@;
