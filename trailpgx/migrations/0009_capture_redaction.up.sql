-- 009: trigger capture redacts the default deny-list (trailprivacy's
-- DefaultDenyList: password, token, secret, api_key, session, card…) by
-- column name, unless the capture was enabled with NoDefaultRedaction
-- (--no-default-redaction). See docs/capture.md, "Default redaction".
--
-- The trigger arguments grow from 6 to 8:
--   7 the redaction rule: a regular expression, generated in Go from the
--     deny-list (trailpgx defaultRedactionPattern), that capture_redacts
--     matches against a normalized column name; '' when the default
--     redaction is off;
--   8 the columns trailprivacy's own matcher found deny-listed when capture
--     was enabled, a text[] literal (redacted whatever the rule says).
-- The rule is checked for every column each time the statement is written:
-- when a capture is compiled, and after an ALTER TABLE on the general path,
-- so a column added later (api_token) is redacted too.
--
-- Captures enabled before this migration have 6 arguments. They get the
-- default redaction: capture_redacts gives them the rule of the deny-list
-- as it is now, and the end of this file recompiles their functions. Their
-- trigger arguments stay as they are (replacing a trigger needs the
-- table's owner).

-- capture_redacts reports whether the default redaction of a capture (its
-- trigger arguments args) redacts column col: col is in argument 8, or its
-- name matches the rule, argument 7 ('' matches nothing). A capture enabled
-- before this migration (6 arguments) gets the rule of the deny-list as it
-- was then (TestCaptureLegacyRule keeps it equal to the Go-generated one).
--
-- The name is normalized first, the way trailprivacy splits a name into
-- words: a '_' goes between a lower-case and an upper-case letter
-- ("userPassword") and before the last capital of a run followed by a
-- lower-case letter ("APIKey"), the name is lower-cased, and every run of
-- characters other than letters and digits becomes one '_'. "newPassword",
-- "X-Api-Key" and "API_KEY" become new_password, x_api_key and api_key. The
-- rule matches whole words: "(^|_)(p_?a_?s_?s_?w_?o_?r_?d|…)(_|$)". In the
-- "C" collation only ASCII letters are letters: any other character
-- separates words (argument 8, trailprivacy's own verdict, covers the
-- columns that exist when capture is enabled).
CREATE FUNCTION @schema@.capture_redacts(args text[], col text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN cardinality(args) >= 8 THEN col = ANY (args[8]::text[]) OR (args[7] <> '' AND w.n ~ args[7])
		ELSE w.n ~ '(^|_)(p_?a_?s_?s_?w_?o_?r_?d|p_?a_?s_?s_?w_?d|p_?w_?d|p_?a_?s_?s_?p_?h_?r_?a_?s_?e|s_?e_?c_?r_?e_?t|t_?o_?k_?e_?n|a_?p_?i_?k_?e_?y|a_?c_?c_?e_?s_?s_?k_?e_?y|p_?r_?i_?v_?a_?t_?e_?k_?e_?y|a_?u_?t_?h_?o_?r_?i_?z_?a_?t_?i_?o_?n|c_?o_?o_?k_?i_?e|s_?e_?s_?s_?i_?o_?n|c_?r_?e_?d_?e_?n_?t_?i_?a_?l|c_?r_?e_?d_?e_?n_?t_?i_?a_?l_?s|c_?a_?r_?d|c_?a_?r_?d_?n_?u_?m_?b_?e_?r|p_?a_?n|c_?v_?v|c_?v_?c|s_?s_?n|i_?b_?a_?n)(_|$)' END
	FROM (SELECT regexp_replace(lower(regexp_replace(regexp_replace(col COLLATE "C",
		'([[:upper:]])([[:upper:]][[:lower:]])', '\1_\2', 'g'),
		'([[:lower:]])([[:upper:]])', '\1_\2', 'g')),
		'[^[:alnum:]]+', '_', 'g') AS n) w
$$;

-- capture_sql as in 0003, with the default redaction: a column is redacted
-- when it is in the redact list (argument 4) or capture_redacts says so.
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
		f AS MATERIALIZED (SELECT * FROM e WHERE cardinality(changes) > 0),
		ids AS (INSERT INTO %2$s.event_ids (id, occurred_at, tenant) SELECT id, %7$s, tenant FROM f)
		INSERT INTO %2$s.events (id, occurred_at, recorded_at, tenant, actor_type, actor_id, action,
			target_type, target_id, changes, changed_fields, request_id, source)
		SELECT id, %7$s, %7$s, tenant, %8$s, %9$s, %10$s, %11$s, target_id, to_jsonb(changes), fields, %12$s, 'trigger' FROM f
	$q$, src, @schema_lit@::regnamespace, tenant_expr, key_expr, array_to_string(elems, ', '), array_to_string(names, ', '),
		p[2], p[3], p[4], p[5], p[6], p[7]);
END $fn$;

-- capture() and the compiled functions pass all the trigger's arguments
-- (TG_ARGV[0:7]: 8 now, 6 for a capture enabled before this migration).
CREATE OR REPLACE FUNCTION @schema@.capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
DECLARE
	ts timestamptz := clock_timestamp();
	c  record;
BEGIN
	c := @schema@.capture_context(ts);
	EXECUTE @schema@.capture_sql(TG_RELID, TG_OP, TG_ARGV[0:7], ARRAY['$1', '$2', '$3', '$4', '$5', '$6', '$7'])
	USING c.tenant, ts, c.a_type, c.a_id, TG_ARGV[0] || '.' || lower(TG_OP), TG_ARGV[0], c.request;
	RETURN NULL;
END $fn$;

CREATE OR REPLACE FUNCTION @schema@.capture_install(rel regclass, args text[]) RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	op    text;
	fname text;
	out   text[] := '{}';
	vars  text[] := ARRAY['v_tenant', 'v_ts', 'v_atype', 'v_aid', 'v_action', 'v_resource', 'v_request'];
BEGIN
	IF coalesce(array_length(args, 1), 0) NOT IN (6, 8) THEN
		RAISE EXCEPTION 'trail capture: capture_install needs 8 arguments (6 for a capture enabled before migration 0009)' USING ERRCODE = 'invalid_parameter_value';
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
					EXECUTE %4$s.capture_sql(TG_RELID, TG_OP, TG_ARGV[0:7], ARRAY['$1', '$2', '$3', '$4', '$5', '$6', '$7'])
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

-- A pure function: whoever lists the captures (ListCaptures) may call it.
REVOKE ALL ON FUNCTION @schema@.capture_redacts(text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @schema@.capture_redacts(text[], text) TO @writer@, @reader@;

-- Recompile the captures enabled before this migration (6 arguments), so
-- that their compiled statements redact the deny-listed columns. The
-- functions keep their names (and the triggers theirs).
DO $up$
DECLARE
	r    record;
	args text[];
	rest bytea;
	i    int;
BEGIN
	FOR r IN SELECT t.tgrelid, t.tgargs FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
		WHERE t.tgname = 'trail_capture_insert' AND t.tgnargs = 6
			AND p.pronamespace = @schema_lit@::regnamespace AND p.proname LIKE 'capture\_%\_insert'
	LOOP
		-- tgargs: the arguments, each followed by a zero byte.
		args := '{}';
		rest := r.tgargs;
		WHILE length(rest) > 0 LOOP
			i := position('\x00'::bytea IN rest);
			IF i = 0 THEN
				i := length(rest) + 1;
			END IF;
			args := args || convert_from(substr(rest, 1, i - 1), current_setting('server_encoding'));
			rest := substr(rest, i + 1);
		END LOOP;
		PERFORM @schema@.capture_install(r.tgrelid::regclass, args);
	END LOOP;
END $up$;
