-- Database roles for a deployment: an owner role that runs migrations and owns every object,
-- and the application role that web, worker and beat connect as. Run as a superuser, once
-- after creating the database and again after every `migrate` (it is idempotent):
--
--   psql -v owner_role=clinic_owner -v app_role=clinic_app -v ON_ERROR_STOP=1 \
--        -d clinic -f deploy/postgres-roles.sql
--
-- Passwords are not set here: \password clinic_owner and \password clinic_app in psql.
--
-- What the application role cannot do, whatever the app is made to run:
--   * change or remove audit history: on clinic_auditevent and clinic_auditcheckpoint it may
--     only SELECT and INSERT (no UPDATE, DELETE or TRUNCATE; the append-only triggers refuse
--     UPDATE and DELETE even to owners);
--   * switch those triggers off: it owns no table (ALTER TABLE ... DISABLE TRIGGER is the
--     owner's), is no superuser, and is granted no SET on session_replication_role (a
--     superuser-only setting);
--   * TRUNCATE anything, or create objects in the schema.

\set ON_ERROR_STOP on

BEGIN;

SELECT format('CREATE ROLE %I LOGIN', :'owner_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner_role') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec
ALTER ROLE :"owner_role" NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS;
ALTER ROLE :"app_role" NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS;
-- Membership in the owner role would hand the app everything the owner can do.
SELECT format('REVOKE %I FROM %I', :'owner_role', :'app_role')
FROM pg_auth_members m
WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = :'owner_role')
  AND m.member = (SELECT oid FROM pg_roles WHERE rolname = :'app_role') \gexec

-- The owner role owns the database (so migrations can create the trusted extensions they
-- need: pg_trgm, btree_gist), the schema's contents, and the trigger functions.
ALTER DATABASE :"DBNAME" OWNER TO :"owner_role";
GRANT USAGE, CREATE ON SCHEMA public TO :"owner_role";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SELECT format('ALTER TABLE %I.%I OWNER TO %I', n.nspname, c.relname, :'owner_role')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
  AND pg_get_userbyid(c.relowner) <> :'owner_role'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') \gexec
-- Sequences behind identity and serial columns follow their table; only free ones move here.
SELECT format('ALTER SEQUENCE %I.%I OWNER TO %I', n.nspname, c.relname, :'owner_role')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'S'
  AND pg_get_userbyid(c.relowner) <> :'owner_role'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i', 'e')) \gexec
SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, :'owner_role')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> :'owner_role'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') \gexec

-- The application role: read and write rows, nothing else. Start from nothing so a re-run
-- also takes back what an earlier, broader grant gave (TRUNCATE, TRIGGER, REFERENCES).
GRANT CONNECT ON DATABASE :"DBNAME" TO :"app_role";
GRANT USAGE ON SCHEMA public TO :"app_role";
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
REVOKE UPDATE, DELETE ON clinic_auditevent, clinic_auditcheckpoint FROM :"app_role";
-- Tables the owner creates from now on get row access without a re-run; the audit
-- restrictions above need the re-run after migrations that add audit tables.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

-- PostgreSQL 15 lets a superuser grant SET on a superuser-only setting; make sure nobody
-- gave the app the one that switches triggers off.
SELECT current_setting('server_version_num')::int >= 150000 AS has_parameter_privileges \gset
\if :has_parameter_privileges
REVOKE SET ON PARAMETER session_replication_role FROM :"app_role";
\endif

COMMIT;
