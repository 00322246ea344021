-- 012: trigger capture without a catalog lookup on every statement.
--
-- Until now each compiled capture function (capture_<oid>_insert|update|
-- delete, 0003/0009) read the table's columns from pg_attribute on every
-- statement (capture_signature) to notice an ALTER TABLE and take the
-- general path: ~60 µs a statement on the benchmark machine. Now, where the
-- migrating role may create an event trigger (a superuser), an event trigger
-- on ALTER TABLE recompiles the captures of the altered table at once, with
-- its new columns, key and default redaction (a column added later that the
-- deny-list matches is redacted in the recompiled statement), and the
-- compiled functions do no check at all. Without the event trigger (the
-- role is not a superuser) they keep the per-statement check, as before.
-- See docs/capture.md, "Schema changes".
--
-- The event trigger and its function are database-wide objects: one event
-- trigger, trail_capture_ddl, calling trail_ddl.capture_ddl() in a schema of
-- its own that no Trail schema's removal drops, shared by every Trail schema
-- of the database. (One per Trail schema, depending on a function in that
-- schema, made every ALTER TABLE in the database fail with "cache lookup
-- failed for function" while a Trail schema was being dropped.) The shared
-- function calls each Trail schema's own capture_compile, so a Trail schema
-- at another version compiles its captures its own way.

-- capture_tgargs splits pg_trigger.tgargs (each argument followed by
-- a zero byte) into the trigger's arguments.
CREATE FUNCTION @schema@.capture_tgargs(tgargs bytea) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	args text[] := '{}';
	rest bytea  := tgargs;
	i    int;
BEGIN
	WHILE length(rest) > 0 LOOP
		i := position('\x00'::bytea IN rest);
		IF i = 0 THEN
			i := length(rest) + 1;
		END IF;
		args := args || convert_from(substr(rest, 1, i - 1), current_setting('server_encoding'));
		rest := substr(rest, i + 1);
	END LOOP;
	RETURN args;
END $fn$;

-- capture_watched reports whether this schema's event trigger is there and
-- enabled: then an ALTER TABLE recompiles the captures and the compiled
-- functions need no check of their own.
CREATE FUNCTION @schema@.capture_watched() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT EXISTS (SELECT 1 FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE e.evtname = 'trail_capture_ddl' AND p.proname = 'capture_ddl' AND n.nspname = 'trail_ddl' AND e.evtenabled <> 'D')
$$;

-- capture_compile writes the three functions of table rel's capture. mode:
--   'watched'  the compiled statement alone (the event trigger recompiles);
--   'checked'  the compiled statement behind the per-statement column check
--              (capture_signature), the general path when it fails;
--   'general'  the general path only (capture_sql on every statement): what
--              the event trigger leaves when it cannot compile the table
--              (e.g. its primary key was dropped), so that the error shows
--              on the next write, as it did before, and not in the ALTER.
CREATE FUNCTION @schema@.capture_compile(rel regclass, args text[], mode text) RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	op    text;
	fname text;
	body  text;
	out   text[] := '{}';
	vars  text[] := ARRAY['v_tenant', 'v_ts', 'v_atype', 'v_aid', 'v_action', 'v_resource', 'v_request'];
	gen   text := format('EXECUTE %s.capture_sql(TG_RELID, TG_OP, TG_ARGV[0:7], ARRAY[''$1'', ''$2'', ''$3'', ''$4'', ''$5'', ''$6'', ''$7''])
					USING v_tenant, v_ts, v_atype, v_aid, v_action, v_resource, v_request', @schema_lit@::regnamespace);
BEGIN
	IF coalesce(array_length(args, 1), 0) NOT IN (6, 8) THEN
		RAISE EXCEPTION 'trail capture: capture_install needs 8 arguments (6 for a capture enabled before migration 0009)' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOREACH op IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
		fname := format('%I.%I', @schema_lit@, 'capture_' || rel::oid || '_' || lower(op));
		body := CASE mode
			WHEN 'watched' THEN @schema@.capture_sql(rel, op, args, vars)
			WHEN 'checked' THEN format('IF %s.capture_signature(TG_RELID) IS DISTINCT FROM %L THEN
					-- The table changed since capture was enabled: take the general path.
					%s;
				ELSE
					%s;
				END IF', @schema_lit@::regnamespace, @schema@.capture_signature(rel), gen, @schema@.capture_sql(rel, op, args, vars))
			ELSE gen END;
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
				%5$s;
				RETURN NULL;
			END $body$
		$def$, fname, args[1] || '.' || lower(op), args[1], @schema_lit@::regnamespace, body);
		EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', fname);
		-- CREATE TRIGGER, run by the table's owner, needs EXECUTE.
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s() TO %I', fname, @writer_lit@);
		out := out || fname;
	END LOOP;
	RETURN out;
END $fn$;

-- capture_install (EnableCapture) compiles without the per-statement check
-- when the event trigger watches ALTER TABLE.
CREATE OR REPLACE FUNCTION @schema@.capture_install(rel regclass, args text[]) RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	RETURN @schema@.capture_compile(rel, args, CASE WHEN @schema@.capture_watched() THEN 'watched' ELSE 'checked' END);
END $fn$;

REVOKE ALL ON FUNCTION @schema@.capture_tgargs(bytea), @schema@.capture_watched(),
	@schema@.capture_compile(regclass, text[], text) FROM PUBLIC;

-- The table's owner, who runs the ALTER TABLE, recompiles (as
-- EnableCapture does): capture_compile is SECURITY DEFINER.
GRANT EXECUTE ON FUNCTION @schema@.capture_tgargs(bytea), @schema@.capture_compile(regclass, text[], text) TO @writer@;

-- trail_ddl.capture_ddl, the event trigger's function: recompile the
-- captures of every table the ALTER TABLE changed, each by the
-- capture_compile of the Trail schema that holds its compiled functions. A
-- capture that no longer compiles (its primary key dropped) takes the
-- general path, so the ALTER does not fail because of Trail; one that the
-- altering role may not recompile fails the ALTER (a compiled statement left
-- as it was would record the old columns, and leave a deny-listed column
-- added now in clear). It runs as the role that runs the ALTER (never as the
-- superuser that created it: it calls functions found by name in other
-- schemas). Every Trail schema's migration runs this file: the newest
-- replaces the function, under an advisory lock. Only a superuser may
-- create an event trigger; without one, captures keep the per-statement
-- check.
DO $up$
BEGIN
	IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
		RETURN;
	END IF;
	PERFORM pg_advisory_xact_lock(hashtext('trail_capture_ddl'));
	CREATE SCHEMA IF NOT EXISTS trail_ddl;
	CREATE OR REPLACE FUNCTION trail_ddl.capture_ddl() RETURNS event_trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
	DECLARE
		r record;
	BEGIN
		FOR r IN SELECT t.tgrelid, t.tgargs, p.pronamespace::regnamespace::text AS nsp FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
			WHERE t.tgrelid IN (SELECT c.objid FROM pg_event_trigger_ddl_commands() c WHERE c.classid = 'pg_class'::regclass)
				AND t.tgname = 'trail_capture_insert' AND p.proname LIKE 'capture\_%\_insert'
		LOOP
			IF to_regprocedure(r.nsp || '.capture_compile(regclass, text[], text)') IS NULL THEN
				CONTINUE; -- a Trail schema before 0012 (its functions check each statement), or being dropped
			END IF;
			BEGIN
				EXECUTE format('SELECT %1$s.capture_compile($1, %1$s.capture_tgargs($2), ''watched'')', r.nsp) USING r.tgrelid::regclass, r.tgargs;
			EXCEPTION WHEN insufficient_privilege THEN
				RAISE;
			WHEN OTHERS THEN
				EXECUTE format('SELECT %1$s.capture_compile($1, %1$s.capture_tgargs($2), ''general'')', r.nsp) USING r.tgrelid::regclass, r.tgargs;
			END;
		END LOOP;
	END $fn$;
	IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'trail_capture_ddl') THEN
		CREATE EVENT TRIGGER trail_capture_ddl ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
			EXECUTE FUNCTION trail_ddl.capture_ddl();
	END IF;
END $up$;

-- Recompile every capture: without the check where the event trigger now
-- watches.
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
