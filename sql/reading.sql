-- The polymorphic signatures of SPEC §2 (thin SQL over the text-keyed
-- functions of src/api/members.rs) and the segment view; loaded last.
CREATE FUNCTION segments.add_members(name text, keys anyarray) RETURNS bigint
LANGUAGE sql VOLATILE AS $$ SELECT segments._add_members(name, keys::pg_catalog.text[]) $$;
CREATE FUNCTION segments.remove_members(name text, keys anyarray) RETURNS bigint
LANGUAGE sql VOLATILE AS $$ SELECT segments._remove_members(name, keys::pg_catalog.text[]) $$;
-- One contact, or many (SPEC §11; anynonarray: an array of keys is the
-- other form, not one key).
CREATE FUNCTION segments.assign(key anynonarray, segments text[], replace boolean DEFAULT false) RETURNS void
LANGUAGE sql VOLATILE AS $$ SELECT segments._assign(key::pg_catalog.text, segments, replace) $$;
CREATE FUNCTION segments.assign(keys anyarray, segments text[], replace boolean DEFAULT false,
                                create_missing boolean DEFAULT false) RETURNS jsonb
LANGUAGE sql VOLATILE AS $$ SELECT segments._assign_all(keys::pg_catalog.text[], segments, replace, create_missing) $$;
-- The (key, segment) rows of a query, e.g. 'TABLE staging' after \copy of a
-- CSV file: run as the caller, with the caller's search_path.
CREATE FUNCTION segments.assign_rows(query text, replace boolean DEFAULT false,
                                     create_missing boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    keys text[];
    names text[];
BEGIN
    EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(q.k::pg_catalog.text), pg_catalog.array_agg(q.s::pg_catalog.text)
                                 FROM (%s) AS q(k, s)', query)
       INTO keys, names;
    RETURN segments._assign_pairs(COALESCE(keys, '{}'), COALESCE(names, '{}'), replace, create_missing);
END $$;
CREATE FUNCTION segments.is_member(name text, key anyelement) RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT segments._is_member(name, key::pg_catalog.text) $$;
CREATE FUNCTION segments.segments_of(key anyelement, source regclass DEFAULT NULL) RETURNS SETOF text
LANGUAGE sql STABLE AS $$ SELECT segments._segments_of(key::pg_catalog.text, pg_catalog.pg_typeof(key)::pg_catalog.oid, source::pg_catalog.oid) $$;
-- Syntax trees reach Rust as text (src/api/language.rs, text_of_tree).
CREATE FUNCTION segments.format(tree jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ SELECT segments._format(tree::pg_catalog.text) $$;
CREATE FUNCTION segments.create_segment(name text, definition jsonb, kind text DEFAULT 'active',
                                        source regclass DEFAULT NULL, description text DEFAULT NULL,
                                        shared boolean DEFAULT true, track_changes boolean DEFAULT false,
                                        tenant text DEFAULT NULL) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
  SELECT segments._create_segment_from_tree(name, definition::pg_catalog.text, kind, source, description, shared, track_changes, tenant)
$$;
-- The views run as their owner (who reads the count and membership tables)
-- and show what the caller may see; security_barrier keeps the caller's
-- own conditions from seeing a row before that test. Members come from
-- _members_of, one visible segment at a time: a plan over the membership
-- tables would show the caller rows of other segments.
CREATE VIEW segments.segment WITH (security_barrier) AS
SELECT d.id, d.name, d.kind, d.source, d.definition, d.description, d.owner, d.shared, d.track_changes,
       d.created_at, d.updated_at, d.refreshed_at,
       (SELECT COALESCE(pg_catalog.sum(c.delta), 0)::bigint FROM segments.count_delta c
         WHERE c.segment_id OPERATOR(pg_catalog.=) d.id) AS member_count,
       d.tenant
  FROM segments.segment_def d
 WHERE segments.can_see(d.shared, d.owner, d.app_user) AND segments.in_tenant(d.tenant);
GRANT SELECT ON segments.segment TO PUBLIC;
CREATE VIEW segments.members WITH (security_barrier) AS
SELECT d.id AS segment_id, d.name AS segment_name, d.source, m.key, m.entered_at
  FROM segments.segment_def d CROSS JOIN LATERAL segments._members_of(d.id) m
 WHERE segments.can_see(d.shared, d.owner, d.app_user) AND segments.in_tenant(d.tenant);
GRANT SELECT ON segments.members TO PUBLIC;
