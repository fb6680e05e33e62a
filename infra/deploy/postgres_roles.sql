-- Roles on an external PostgreSQL. Run once as a superuser, then run
-- `cuentas db migrate` with DATABASE_URL as cuentas_writer (it creates the
-- schema, the tables and the SELECT grants for cuentas_reader).
CREATE ROLE cuentas_writer LOGIN PASSWORD 'change-me';
CREATE ROLE cuentas_reader LOGIN PASSWORD 'change-me-too';
-- The dashboard's reviewer desk: sign-in and review requests only (migration 0025, ADR 0008).
CREATE ROLE cuentas_review LOGIN PASSWORD 'change-me-three';
CREATE DATABASE cuentas OWNER cuentas_writer;
-- The reader can only SELECT what migration 0004 grants: never quarantined raw
-- bytes, never reviewer accounts.
