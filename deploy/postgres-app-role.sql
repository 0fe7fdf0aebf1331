-- Least-privilege role for the running application (web, worker, beat).
-- Run as the database owner after `migrate`, and again after every migration that adds
-- tables:  psql -v app_role=clinic_app -d clinic -f deploy/postgres-app-role.sql
-- Migrations keep running as the owner; the app connects as :app_role, which can read
-- and write everything except that it may only INSERT and SELECT audit events.
GRANT USAGE ON SCHEMA public TO :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
REVOKE UPDATE, DELETE, TRUNCATE ON clinic_auditevent FROM :"app_role";
