-- 001: the events table, partitioned by month on occurred_at, with the
-- idempotency table, the indexes for the questions people ask, the
-- append-only guard, the roles and row-level security.
--
-- Placeholders, replaced by the migrator: @schema@ (quoted identifier),
-- @schema_lit@ (the schema name as a string literal), @reader@ and @writer@
-- (quoted role names), @reader_lit@ and @writer_lit@ (as literals).

-- event_ids makes an event ID unique across partitions: a unique constraint
-- on the partitioned events table would have to include occurred_at. Every
-- writer inserts here first, ON CONFLICT DO NOTHING, in the same transaction.
-- occurred_at and tenant let Get find the row through events_tenant_time.
CREATE TABLE @schema@.event_ids (
	id          uuid PRIMARY KEY,
	occurred_at timestamptz NOT NULL,
	tenant      text NOT NULL
);

CREATE TABLE @schema@.events (
	id               uuid NOT NULL,
	occurred_at      timestamptz NOT NULL,
	recorded_at      timestamptz NOT NULL DEFAULT now(),
	schema_version   smallint NOT NULL DEFAULT 1,
	tenant           text NOT NULL DEFAULT '', -- '' is a platform event
	actor_type       text NOT NULL,
	actor_id         text NOT NULL DEFAULT '',
	actor_name       text NOT NULL DEFAULT '',
	actor_email      text NOT NULL DEFAULT '',
	actor_ip         text NOT NULL DEFAULT '',
	actor_user_agent text NOT NULL DEFAULT '',
	on_behalf_of     jsonb,
	action           text NOT NULL,
	target_type      text NOT NULL DEFAULT '',
	target_id        text NOT NULL DEFAULT '',
	target_name      text NOT NULL DEFAULT '',
	outcome          text NOT NULL DEFAULT 'success',
	description      text NOT NULL DEFAULT '',
	changes          jsonb,  -- [{"field","old","new","redacted"}], in field order
	changed_fields   text[], -- the changes' field paths, for the GIN index
	metadata         jsonb,
	request_id       text NOT NULL DEFAULT '',
	trace_id         text NOT NULL DEFAULT '',
	source           text NOT NULL DEFAULT ''
) PARTITION BY RANGE (occurred_at);

-- A tenant's newest events, keyset-paged; INCLUDE (action) answers a
-- tenant's counts by action and day with an index-only scan, and lets Get
-- reach a row from event_ids (tenant, occurred_at, id).
CREATE INDEX events_tenant_time ON @schema@.events (tenant, occurred_at DESC, id DESC) INCLUDE (action);
-- A user's (or service's) events in a tenant.
CREATE INDEX events_tenant_actor ON @schema@.events (tenant, actor_type, actor_id, occurred_at DESC, id DESC);
-- An object's history.
CREATE INDEX events_tenant_target ON @schema@.events (tenant, target_type, target_id, occurred_at DESC, id DESC);
-- All-tenant readers' newest events (the platform view, the admin UI).
CREATE INDEX events_time ON @schema@.events (occurred_at DESC, id DESC);
-- Events that changed a field.
CREATE INDEX events_changed_fields ON @schema@.events USING gin (changed_fields);
-- Words in descriptions. An expression index, not a stored tsvector column:
-- the same queries, without storing every description twice.
CREATE INDEX events_description ON @schema@.events USING gin (to_tsvector('simple'::regconfig, description));
-- Retention is measured on recorded_at, which grows with insertion order:
-- a BRIN index finds old rows for a few bytes per thousand events.
CREATE INDEX events_recorded_at ON @schema@.events USING brin (recorded_at);

-- Append-only. Privileges are the guard: nobody but the owner holds UPDATE,
-- DELETE or TRUNCATE. The triggers also stop the owner and any role granted
-- too much by mistake. The one exception is purge_events, a SECURITY DEFINER
-- function that runs as the owner and raises trail.purge for its own
-- transaction: the trigger lets a DELETE through only when both hold (the
-- flag alone gains a role without DELETE privilege nothing).
CREATE FUNCTION @schema@.forbid_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_OP = 'DELETE' AND current_setting('trail.purge', true) = 'on'
		AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION 'trail: audit events are append-only: % on %.% is not allowed', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
		USING ERRCODE = 'insufficient_privilege',
		      HINT = 'old events are removed only by retention, through purge_events()';
END $$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON @schema@.events
	FOR EACH ROW EXECUTE FUNCTION @schema@.forbid_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON @schema@.events
	FOR EACH STATEMENT EXECUTE FUNCTION @schema@.forbid_change();
CREATE TRIGGER event_ids_append_only BEFORE UPDATE OR DELETE ON @schema@.event_ids
	FOR EACH ROW EXECUTE FUNCTION @schema@.forbid_change();
CREATE TRIGGER event_ids_no_truncate BEFORE TRUNCATE ON @schema@.event_ids
	FOR EACH STATEMENT EXECUTE FUNCTION @schema@.forbid_change();

-- ensure_partitions creates the monthly partitions (UTC months) holding the
-- given times, if missing. Writers call it before appending to a month they
-- have not seen; Migrate calls it for the current month and a few ahead. It
-- runs as the owner so that writers need no DDL privilege. Row triggers are
-- cloned onto partitions by PostgreSQL; statement (TRUNCATE) triggers are
-- not, so it adds that one itself.
-- Creating a partition locks the events table; lock_timeout keeps a long
-- transaction that holds events from queueing every writer behind us.
CREATE FUNCTION @schema@.ensure_partitions(months timestamptz[]) RETURNS integer
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
			n := n + 1;
		EXCEPTION WHEN duplicate_table OR unique_violation THEN
			NULL; -- another session created it first
		END;
	END LOOP;
	RETURN n;
END $$;

-- purge_events is the one way rows leave: retention calls it. It removes
-- events recorded before p_before (of one tenant, or of all when p_tenant is
-- NULL) with their event_ids, dropping whole partitions when every row of one
-- qualifies and no tenant is named. It returns the number of events removed.
CREATE FUNCTION @schema@.purge_events(p_before timestamptz, p_tenant text DEFAULT NULL) RETURNS bigint
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
				EXECUTE format('DELETE FROM %I.event_ids e USING %s p WHERE e.id = p.id', @schema_lit@, part);
				EXECUTE format('ALTER TABLE %I.events DETACH PARTITION %s', @schema_lit@, part);
				EXECUTE format('DROP TABLE %s', part);
				n := n + k;
			END IF;
		END LOOP;
	END IF;
	EXECUTE format('WITH d AS (DELETE FROM %I.events WHERE recorded_at < $1 AND ($2::text IS NULL OR tenant = $2) RETURNING id)
		DELETE FROM %I.event_ids e USING d WHERE e.id = d.id', @schema_lit@, @schema_lit@) USING p_before, p_tenant;
	GET DIAGNOSTICS k = ROW_COUNT;
	n := n + k;
	PERFORM set_config('trail.purge', 'off', true);
	RETURN n;
END $$;

-- Roles are cluster-wide, so several schemas (and parallel tests) share
-- them: create them only when missing, tolerating a concurrent creator.
DO $$
DECLARE r text;
BEGIN
	FOREACH r IN ARRAY ARRAY[@reader_lit@, @writer_lit@] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			BEGIN
				EXECUTE format('CREATE ROLE %I NOLOGIN', r);
			EXCEPTION WHEN duplicate_object OR unique_violation THEN
				NULL;
			END;
		END IF;
	END LOOP;
END $$;

REVOKE ALL ON @schema@.events, @schema@.event_ids FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@.ensure_partitions(timestamptz[]), @schema@.purge_events(timestamptz, text),
	@schema@.forbid_change() FROM PUBLIC;
GRANT USAGE ON SCHEMA @schema@ TO @reader@, @writer@;
-- Writers append and read (RETURNING and the store's queries need SELECT).
GRANT SELECT, INSERT ON @schema@.events, @schema@.event_ids TO @writer@;
GRANT EXECUTE ON FUNCTION @schema@.ensure_partitions(timestamptz[]) TO @writer@;
-- Readers read events, and only those of the tenant their transaction names.
GRANT SELECT ON @schema@.events TO @reader@;

-- Tenant isolation. The owner is exempt (no FORCE): it runs migrations and
-- purge. trail.tenant is set per transaction (set_config(..., true));
-- nullif makes an unset or reset setting ('' once a session has used it)
-- match nothing, and platform events (tenant '') match no reader.
ALTER TABLE @schema@.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE @schema@.event_ids ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_writer ON @schema@.events TO @writer@ USING (true) WITH CHECK (true);
CREATE POLICY event_ids_writer ON @schema@.event_ids TO @writer@ USING (true) WITH CHECK (true);
CREATE POLICY events_tenant_reader ON @schema@.events FOR SELECT TO @reader@
	USING (tenant = nullif(current_setting('trail.tenant', true), ''));
