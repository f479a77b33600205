-- The catalog of pg_segments: registrations, segments, dependencies and
-- member-count deltas. Runs before the generated function definitions.
--
-- Privileges: these tables belong to the extension owner. Other roles read
-- them through row-level security (personal segments stay private) and never
-- write them directly: the API functions check the caller's rights and then
-- act as the extension owner (see src/privilege.rs).

CREATE TABLE segments.source (
    relid         regclass    PRIMARY KEY,
    key_column    name        NOT NULL,
    key_type      regtype     NOT NULL,
    membership    regclass    NOT NULL UNIQUE,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE TABLE segments.relation (
    source         regclass NOT NULL REFERENCES segments.source (relid) ON DELETE CASCADE,
    name           text     NOT NULL,
    relation       regclass NOT NULL,
    contact_column name     NOT NULL,
    PRIMARY KEY (source, name)
);

CREATE TABLE segments.lookup (
    source     regclass NOT NULL REFERENCES segments.source (relid) ON DELETE CASCADE,
    name       text     NOT NULL,
    via_column name     NOT NULL,
    target     regclass NOT NULL,
    target_key name     NOT NULL,
    PRIMARY KEY (source, name)
);

CREATE TABLE segments.segment_def (
    id            bigserial   PRIMARY KEY,
    name          text        NOT NULL CHECK (name OPERATOR(pg_catalog.<>) '' AND pg_catalog.length(name) OPERATOR(pg_catalog.<=) 200),
    kind          text        NOT NULL CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'static'])),
    source        regclass    NOT NULL REFERENCES segments.source (relid),
    definition    text,
    description   text,
    owner         regrole     NOT NULL,
    shared        boolean     NOT NULL DEFAULT true,
    track_changes boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    refreshed_at  timestamptz,
    CHECK (kind OPERATOR(pg_catalog.=) 'static' OR definition IS NOT NULL)
);
CREATE UNIQUE INDEX segment_def_name ON segments.segment_def (pg_catalog.lower(name));
CREATE INDEX segment_def_source ON segments.segment_def (source);

-- "view uses": segment_id's filter says IN SEGMENT depends_on.
CREATE TABLE segments.dependency (
    segment_id bigint NOT NULL REFERENCES segments.segment_def (id) ON DELETE CASCADE,
    depends_on bigint NOT NULL REFERENCES segments.segment_def (id),
    PRIMARY KEY (segment_id, depends_on)
);
CREATE INDEX dependency_depends_on ON segments.dependency (depends_on);

-- Member counts as deltas: writers never update a shared counter row, so
-- writers on different contacts never wait for each other. A row trigger adds
-- to its backend's own row of the segment (updated without waiting, or a new
-- row appended); statements append a row. Deltas are folded with SKIP LOCKED,
-- which never waits either. Every statement that
-- writes a membership table inserts its delta in the same statement. No
-- foreign key, like the membership tables (its check would cost every write
-- a query): drop_segment deletes a segment's deltas itself.
CREATE TABLE segments.count_delta (
    segment_id bigint NOT NULL,
    delta      bigint NOT NULL
);
CREATE INDEX count_delta_segment ON segments.count_delta (segment_id);
-- Rows are updated and deleted in place: with no key of their own, they are
-- identified whole, so that a publication FOR ALL TABLES (CDC) accepts the
-- UPDATEs and DELETEs of the counts and a subscriber can apply them.
ALTER TABLE segments.count_delta REPLICA IDENTITY FULL;

SELECT pg_catalog.pg_extension_config_dump('segments.source', '');
SELECT pg_catalog.pg_extension_config_dump('segments.relation', '');
SELECT pg_catalog.pg_extension_config_dump('segments.lookup', '');
SELECT pg_catalog.pg_extension_config_dump('segments.segment_def', '');
SELECT pg_catalog.pg_extension_config_dump('segments.segment_def_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('segments.dependency', '');
SELECT pg_catalog.pg_extension_config_dump('segments.count_delta', '');

-- Admins: superusers and members of segments_admin, if that role exists.
CREATE FUNCTION segments.is_admin() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.rolsuper OR EXISTS (
        SELECT FROM pg_catalog.pg_roles a
         WHERE a.rolname OPERATOR(pg_catalog.=) 'segments_admin'
           AND pg_catalog.pg_has_role(a.oid, 'MEMBER'))
      FROM pg_catalog.pg_roles r
     WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER
$$;

-- Whether the current role may see a segment: shared, its own, or admin.
-- A personal segment of an application user (`app_user`, SPEC §7) is its
-- owner role's only while that user is the one segments.app_user names: a
-- pooled role acts for many users. No SET clause, so that the planner
-- inlines it into the policies (every name in it is qualified): a shared
-- segment then costs one boolean test.
CREATE FUNCTION segments.can_see(shared boolean, owner regrole, app_user text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT shared
        OR (pg_catalog.pg_has_role(owner, 'MEMBER')
            AND (app_user IS NULL OR app_user OPERATOR(pg_catalog.=) pg_catalog.current_setting('segments.app_user', true)))
        OR segments.is_admin()
$$;

-- can_see for role `role`, for what runs as the owner on the caller's behalf.
CREATE FUNCTION segments.can_see_as(role oid, shared boolean, owner regrole, app_user text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT shared
        OR (pg_catalog.pg_has_role(role, owner, 'MEMBER')
            AND (app_user IS NULL OR app_user OPERATOR(pg_catalog.=) pg_catalog.current_setting('segments.app_user', true)))
        OR EXISTS (
        SELECT FROM pg_catalog.pg_roles r
         WHERE r.oid OPERATOR(pg_catalog.=) role
           AND (r.rolsuper OR EXISTS (
                SELECT FROM pg_catalog.pg_roles a
                 WHERE a.rolname OPERATOR(pg_catalog.=) 'segments_admin'
                   AND pg_catalog.pg_has_role(role, a.oid, 'MEMBER'))))
$$;

ALTER TABLE segments.segment_def ENABLE ROW LEVEL SECURITY;
-- (completed below, with the tenant and application user columns)
CREATE POLICY visible ON segments.segment_def FOR SELECT USING (segments.can_see(shared, owner, NULL));
ALTER TABLE segments.dependency ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON segments.dependency FOR SELECT
    USING (segment_id OPERATOR(pg_catalog.=) ANY (SELECT d.id FROM segments.segment_def d)
           AND depends_on OPERATOR(pg_catalog.=) ANY (SELECT d.id FROM segments.segment_def d));
ALTER TABLE segments.count_delta ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON segments.count_delta FOR SELECT
    USING (segment_id OPERATOR(pg_catalog.=) ANY (SELECT d.id FROM segments.segment_def d));

GRANT USAGE ON SCHEMA segments TO PUBLIC;
-- The count and membership tables are not readable by PUBLIC: a plan over
-- them under row security shows how many rows the policy removed (EXPLAIN
-- ANALYZE: "Rows Removed by Filter"), i.e. the size and members of segments
-- the role cannot see. Roles read them through functions and the views of
-- sql/reading.sql, which run as the owner and show only what the caller may
-- see; a role that may see everything can be granted the tables.
GRANT SELECT ON segments.source, segments.relation, segments.lookup, segments.segment_def,
                segments.dependency TO PUBLIC;

-- Whether table `relid` is registered with the membership table named
-- `membership`: the triggers below do nothing on a table that is not.
CREATE FUNCTION segments._registered_with(relid oid, membership text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM segments.source s
                    WHERE s.relid OPERATOR(pg_catalog.=) $1
                      AND s.membership OPERATOR(pg_catalog.=) pg_catalog.to_regclass($2))
$$;
REVOKE ALL ON FUNCTION segments._registered_with(oid, text) FROM PUBLIC;

-- Contacts that leave the source leave every segment; a changed key takes
-- its memberships along. Installed on each source by register_source with
-- the membership table and key column as arguments. A table that is not
-- (or no longer) registered has no memberships: `pg_dump -t` carries these
-- triggers to a database where the table is not registered.
CREATE FUNCTION segments.forget_contacts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    membership text := TG_ARGV[0];
    key_column text := TG_ARGV[1];
BEGIN
    IF NOT segments._registered_with(TG_RELID, TG_ARGV[0]) THEN
        RETURN NULL;
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        EXECUTE pg_catalog.format(
            'WITH gone AS (DELETE FROM %s RETURNING segment_id)
             INSERT INTO segments.count_delta (segment_id, delta)
             SELECT segment_id, OPERATOR(pg_catalog.-) pg_catalog.count(*) FROM gone GROUP BY segment_id',
            membership);
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
        EXECUTE pg_catalog.format(
            'WITH gone AS (DELETE FROM %s AS m USING old_rows AS o WHERE m.%I OPERATOR(pg_catalog.=) o.%I
                           RETURNING m.segment_id)
             INSERT INTO segments.count_delta (segment_id, delta)
             SELECT segment_id, OPERATOR(pg_catalog.-) pg_catalog.count(*) FROM gone GROUP BY segment_id',
            membership, key_column, key_column);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION segments.move_contact() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT segments._registered_with(TG_RELID, TG_ARGV[0]) THEN
        RETURN NULL;
    END IF;
    EXECUTE pg_catalog.format(
        'UPDATE %s AS m SET %I = ($1).%I WHERE m.%I OPERATOR(pg_catalog.=) ($2).%I',
        TG_ARGV[0], TG_ARGV[1], TG_ARGV[1], TG_ARGV[1], TG_ARGV[1])
    USING NEW, OLD;
    RETURN NULL;
END $$;
-- A contact moved to another tenant leaves the old tenant's static segments
-- (the trigger leaves its active ones): every segment of a source with
-- tenants holds that tenant's contacts only. Installed by register_source
-- on a source with tenants, with the membership table, key column and
-- tenant column as arguments; named to fire before segments_move_key, while
-- the memberships are under the old key.
CREATE FUNCTION segments.leave_tenant() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT segments._registered_with(TG_RELID, TG_ARGV[0]) THEN
        RETURN NULL;
    END IF;
    EXECUTE pg_catalog.format(
        'WITH gone AS (DELETE FROM %s AS m USING segments.segment_def d
                        WHERE m.%I OPERATOR(pg_catalog.=) ($1).%I AND d.id OPERATOR(pg_catalog.=) m.segment_id
                          AND d.kind OPERATOR(pg_catalog.=) ''static''
                          AND d.tenant OPERATOR(pg_catalog.=) ($1).%I::pg_catalog.text
                       RETURNING m.segment_id, d.track_changes),
              logged AS (INSERT INTO segments.changes (segment_id, key, change)
                         SELECT segment_id, ($1).%I::pg_catalog.text, ''leave'' FROM gone WHERE track_changes)
         INSERT INTO segments.count_delta (segment_id, delta)
         SELECT segment_id, OPERATOR(pg_catalog.-) pg_catalog.count(*) FROM gone GROUP BY segment_id',
        TG_ARGV[0], TG_ARGV[1], TG_ARGV[1], TG_ARGV[2], TG_ARGV[1])
    USING OLD;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION segments.forget_contacts(), segments.move_contact(), segments.leave_tenant() FROM PUBLIC;

-- Which tables, and which of their columns, each segment's filter reads (the
-- source, relations, lookup targets): a write to one of them recomputes only
-- these segments, and an UPDATE that changes none of the columns nothing.
CREATE TABLE segments.segment_read (
    segment_id bigint   NOT NULL REFERENCES segments.segment_def (id) ON DELETE CASCADE,
    relid      regclass NOT NULL,
    columns    text[]   NOT NULL DEFAULT '{}',
    PRIMARY KEY (segment_id, relid)
);
CREATE INDEX segment_read_relid ON segments.segment_read (relid);
SELECT pg_catalog.pg_extension_config_dump('segments.segment_read', '');
ALTER TABLE segments.segment_read ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON segments.segment_read FOR SELECT
    USING (segment_id OPERATOR(pg_catalog.=) ANY (SELECT d.id FROM segments.segment_def d));
GRANT SELECT ON segments.segment_read TO PUBLIC;

-- Enter/leave events of segments created with track_changes.
CREATE TABLE segments.changes (
    id         bigserial   PRIMARY KEY,
    segment_id bigint      NOT NULL REFERENCES segments.segment_def (id) ON DELETE CASCADE,
    key        text        NOT NULL,
    change     text        NOT NULL CHECK (change OPERATOR(pg_catalog.=) ANY (ARRAY['enter', 'leave'])),
    at         timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX changes_segment ON segments.changes (segment_id, id);
SELECT pg_catalog.pg_extension_config_dump('segments.changes', '');
SELECT pg_catalog.pg_extension_config_dump('segments.changes_id_seq', '');
ALTER TABLE segments.changes ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON segments.changes FOR SELECT
    USING (segment_id OPERATOR(pg_catalog.=) ANY (SELECT d.id FROM segments.segment_def d));
GRANT SELECT ON segments.changes TO PUBLIC;

-- Time-relative segments: whether a segment's filter depends on the passing of
-- time (refresh_due() sweeps only those and their dependents), and when
-- refresh_due() last brought it up to date.
ALTER TABLE segments.segment_def ADD COLUMN time_relative boolean NOT NULL DEFAULT false;
ALTER TABLE segments.segment_def ADD COLUMN swept_at timestamptz;

-- Tenants (SPEC §7): a source's tenant column, and the tenant each of its
-- segments belongs to (its text form; NULL for sources without tenants).
ALTER TABLE segments.source ADD COLUMN tenant_column name;
ALTER TABLE segments.segment_def ADD COLUMN tenant text CHECK (tenant OPERATOR(pg_catalog.<>) '');
CREATE INDEX segment_def_tenant ON segments.segment_def (source, tenant);
-- Names are unique per tenant (SPEC §7), and among segments without one.
DROP INDEX segments.segment_def_name;
CREATE UNIQUE INDEX segment_def_name ON segments.segment_def (pg_catalog.lower(name), COALESCE(tenant, ''));
-- Whether a segment of `tenant` is in view: while segments.tenant is set,
-- only that tenant's are (for every role, superusers too: the functions and
-- views test it themselves); otherwise all. Inlined like can_see.
CREATE FUNCTION segments.in_tenant(tenant text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(pg_catalog.current_setting('segments.tenant', true), '') OPERATOR(pg_catalog.=) ''
        OR tenant OPERATOR(pg_catalog.=) pg_catalog.current_setting('segments.tenant', true)
$$;
-- The application user a personal segment belongs to (segments.app_user
-- when it was created), NULL for the owner role's own.
ALTER TABLE segments.segment_def ADD COLUMN app_user text;
ALTER POLICY visible ON segments.segment_def USING (segments.can_see(shared, owner, app_user) AND segments.in_tenant(tenant));
