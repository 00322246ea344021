-- 002: readers bound to a tenant by their login role.
--
-- trail.tenant is set by the application for each transaction; a session
-- that can run arbitrary SQL can also call set_config itself. For such
-- sessions (a tenant's own SQL console, a BI tool) bind the login role to a
-- tenant here: the binding follows session_user, which a session cannot
-- change without being superuser (SET ROLE changes current_user only), and
-- it overrides trail.tenant.
CREATE TABLE @schema@.reader_tenants (
	role   name PRIMARY KEY,
	tenant text NOT NULL CHECK (tenant <> '')
);
REVOKE ALL ON @schema@.reader_tenants FROM PUBLIC;

-- reader_tenant is the tenant the current session may read: its login
-- role's binding, else the transaction's trail.tenant; NULL (nothing) when
-- neither is set. SECURITY DEFINER so that readers need no access to
-- reader_tenants; it tells a session only its own tenant.
CREATE FUNCTION @schema@.reader_tenant() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(
		(SELECT tenant FROM @schema@.reader_tenants WHERE role = session_user),
		nullif(current_setting('trail.tenant', true), ''))
$$;
REVOKE ALL ON FUNCTION @schema@.reader_tenant() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @schema@.reader_tenant() TO @reader@;

-- The sub-select makes the function run once per query (an InitPlan), so the
-- tenant indexes still apply.
DROP POLICY events_tenant_reader ON @schema@.events;
CREATE POLICY events_tenant_reader ON @schema@.events FOR SELECT TO @reader@
	USING (tenant = (SELECT @schema@.reader_tenant()));
