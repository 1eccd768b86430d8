-- The read-only role BI tools log in through (PostgreSQL): every table and view in the warehouse
-- schema, now and later, but nothing in the restricted schema holding clear email and phone.
-- BI logins are created by the DBA and granted this role: GRANT crm_bi TO <login>.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_bi') THEN
        CREATE ROLE crm_bi NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object THEN NULL;  -- roles are per cluster; another database's upgrade won the race
END
$$;
GRANT USAGE ON SCHEMA public TO crm_bi;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO crm_bi;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO crm_bi;
REVOKE ALL ON SCHEMA restricted FROM PUBLIC;
REVOKE ALL ON SCHEMA restricted FROM crm_bi;
REVOKE ALL ON ALL TABLES IN SCHEMA restricted FROM crm_bi
