-- 013: a leaner index set (issue 19): the same query paths, fewer bytes.
--
-- The b-trees ended every key with id, so that a page's ORDER BY
-- occurred_at DESC, id DESC came straight out of the index. id is 16 bytes
-- in every entry of four indexes (a sixth of events_target, a third of
-- events_time). Two events of one tenant (or actor, or object) at the same
-- microsecond are rare, so the index order by occurred_at alone is the page
-- order but for ties, which an Incremental Sort puts right group by group
-- without reading further than the page: the plans keep reading one index
-- range in order and stop at the page size (plan_test.go checks no full
-- Sort). The keyset cursor keeps its exact (occurred_at, id) comparison; the
-- index bounds occurred_at.
--
-- The GINs index only the rows they can match: an event without changes
-- (changed_fields NULL) or without a description cost an empty or NULL
-- placeholder entry per row (41 B/event on data with no changes at all).
-- Query adds the partial predicates (cardinality(changed_fields) > 0,
-- description <> '') to its conditions, which they imply anyway, so the
-- planner may use them.
--
-- Both GINs keep fastupdate (inserts go to a pending list, merged into the
-- tree in batches) but with a 256 kB list instead of 4 MB: the pages a
-- merged list leaves are free space the file keeps, so each partition's
-- index carried up to 4 MB of it — most of the description GIN at 100 000
-- events through Append (273 B/event in TestPlans). Measured on 100 000
-- descriptions inserted 1 000 at a time: 92 B/event with the default list,
-- 57 with 256 kB, 55 with fastupdate off (which makes every insert update
-- the tree, a dozen or more entries per event).
--
-- Unchanged, and why: events_tenant_time keeps INCLUDE (action) for the
-- counts' index-only scan; event_ids stays a table of its own (see
-- docs/storage-postgres.md: IDs are the caller's, occurred_at too, so a key
-- on the partitioned table would have to include occurred_at and a retried
-- event with another time would be stored twice; the seal queue's trigger
-- and the capture triggers claim IDs there); events_recorded_at (BRIN) costs
-- next to nothing.
--
-- Every index is dropped and rebuilt under its own name in this migration's
-- transaction: readers and writers wait for the rebuild (seconds per
-- million events), and no query ever runs without its index. For tens of
-- millions of events, build the new indexes by hand first (CREATE INDEX
-- CONCURRENTLY per partition under other names, then swap), as 0008 says.

DROP INDEX IF EXISTS @schema@.events_tenant_time;
CREATE INDEX events_tenant_time ON @schema@.events (tenant, occurred_at DESC) INCLUDE (action);

DROP INDEX IF EXISTS @schema@.events_actor;
CREATE INDEX events_actor ON @schema@.events (actor_type, actor_id, tenant, occurred_at DESC);

DROP INDEX IF EXISTS @schema@.events_target;
CREATE INDEX events_target ON @schema@.events (target_type, target_id, tenant, occurred_at DESC);

DROP INDEX IF EXISTS @schema@.events_time;
CREATE INDEX events_time ON @schema@.events (occurred_at DESC);

DROP INDEX IF EXISTS @schema@.events_changed_fields;
CREATE INDEX events_changed_fields ON @schema@.events USING gin (changed_fields) WITH (gin_pending_list_limit = 256)
	WHERE cardinality(changed_fields) > 0;

DROP INDEX IF EXISTS @schema@.events_description;
CREATE INDEX events_description ON @schema@.events USING gin (to_tsvector('simple'::regconfig, description)) WITH (gin_pending_list_limit = 256)
	WHERE description <> '';
