-- 008: the actor and target indexes lead with the subject, not the tenant.
--
-- 0001 indexed (tenant, actor_type, actor_id, …) and (tenant, target_type,
-- target_id, …). With the tenant first, an actor or an object across all
-- tenants (an all-tenant key's `actor=user:42`, object history without a
-- tenant, the admin UI's actor page) had no index: PostgreSQL 15 has no skip
-- scan, so it walked events_time newest first and filtered, which `trail
-- bench` measured at 2.7–23 s for a small tenant's user at 10 M events.
--
-- Putting the tenant after the subject costs nothing: the same columns, so
-- the same size. With equality on type, id and tenant the index serves the
-- tenant's questions exactly as before (same order, occurred_at DESC, id
-- DESC, so pages need no sort). Without a tenant, a user or an object lives
-- in one tenant, so its events are still one contiguous range in that order;
-- a staff actor seen in a few tenants is a few ranges, merged by a small sort.
--
-- The new indexes are built before the old ones are dropped, so no query is
-- left without one. CREATE INDEX on the partitioned table builds one on every
-- partition and holds a SHARE lock on each meanwhile: writes wait until the
-- migration commits (minutes for tens of millions of events; plan it). A big
-- table can instead be prepared by hand: CREATE INDEX CONCURRENTLY on every
-- partition, CREATE INDEX ON ONLY the parent, ALTER INDEX … ATTACH PARTITION;
-- this migration then finds the names taken and only drops the old indexes.

CREATE INDEX IF NOT EXISTS events_actor ON @schema@.events (actor_type, actor_id, tenant, occurred_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS events_target ON @schema@.events (target_type, target_id, tenant, occurred_at DESC, id DESC);
DROP INDEX IF EXISTS @schema@.events_tenant_actor;  -- and its partitions' indexes
DROP INDEX IF EXISTS @schema@.events_tenant_target;
