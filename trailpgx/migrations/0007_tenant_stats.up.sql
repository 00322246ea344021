-- 007: tell the planner that an actor or a target belongs to one tenant.
--
-- Users and objects live in one tenant, so tenant = $1 AND actor_id = $2
-- selects about as many rows as actor_id = $2 alone. Without statistics the
-- planner multiplies the two selectivities and expects a few rows where a
-- busy user of a big tenant has thousands; it then reads them all through a
-- bitmap scan and sorts them instead of walking the actor index newest first
-- and stopping at the page. `trail bench` W3 measured such a user's last 30
-- days at 17 ms (2 400 rows read) against 0.8 ms (101) with these
-- statistics, at 10 M events. Functional-dependency statistics are a few
-- hundred bytes per partition, built by ANALYZE (autovacuum's too).
-- Planning uses a partition's own statistics, so each partition gets them.

DO $$
DECLARE part regclass;
BEGIN
	FOR part IN SELECT i.inhrelid::regclass FROM pg_inherits i
		WHERE i.inhparent = format('%I.events', @schema_lit@)::regclass LOOP
		EXECUTE format('CREATE STATISTICS IF NOT EXISTS %I.%I (dependencies) ON tenant, actor_id, target_id FROM %s',
			@schema_lit@, (SELECT relname FROM pg_class WHERE oid = part) || '_deps', part);
		-- A table that no longer changes would wait long for autovacuum.
		IF (SELECT reltuples > 0 FROM pg_class WHERE oid = part) THEN
			EXECUTE format('ANALYZE %s', part);
		END IF;
	END LOOP;
END $$;

-- ensure_partitions, as in 0006, adding the statistics to each new
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
			EXECUTE format('CREATE STATISTICS %I.%I (dependencies) ON tenant, actor_id, target_id FROM %I.%I',
				@schema_lit@, part || '_deps', @schema_lit@, part);
			n := n + 1;
		EXCEPTION WHEN duplicate_table OR unique_violation OR duplicate_object THEN
			NULL; -- another session created it first
		END;
	END LOOP;
	RETURN n;
END $$;
