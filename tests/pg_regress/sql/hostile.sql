-- Roles that try to reach what is not theirs through registration and
-- segment functions, each run as a separate non-superuser role.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_segments CASCADE;
DROP SCHEMA IF EXISTS ho CASCADE;
DROP ROLE IF EXISTS seg_mallory;
DROP ROLE IF EXISTS seg_victim;
CREATE EXTENSION pg_segments;
CREATE ROLE seg_mallory;
CREATE ROLE seg_victim;
CREATE SCHEMA ho;
GRANT USAGE ON SCHEMA ho TO PUBLIC;
SET search_path = ho, public;

\i tests/pg_regress/sql/helpers.psql
\i tests/pg_regress/sql/exact_helper.psql

CREATE TABLE ho.mine (id int PRIMARY KEY, score int, owner_note text);
CREATE TABLE ho.theirs (id int PRIMARY KEY, contact_id int, secret text);
INSERT INTO ho.mine SELECT i, i * 10, 'n' FROM generate_series(1, 5) AS i;
INSERT INTO ho.theirs VALUES (1, 1, 'x');
ALTER TABLE ho.mine OWNER TO seg_mallory;
ALTER TABLE ho.theirs OWNER TO seg_victim;
GRANT SELECT ON ho.theirs TO seg_mallory;

-- Registration installs triggers as the extension owner: the caller must
-- own (or hold TRIGGER on) every table it registers, and pg_segments' own
-- tables are never registered.
SET ROLE seg_mallory;
SELECT segments.register_source('ho.mine');
SELECT fails($$SELECT segments.register_relation('stolen', 'ho.mine', 'ho.theirs', 'contact_id')$$);
SELECT fails($$SELECT segments.register_lookup('stolen', 'ho.mine', 'id', 'ho.theirs')$$);
SELECT fails($$SELECT segments.register_relation('deltas', 'ho.mine', 'segments.count_delta', 'segment_id')$$);
SELECT fails($$SELECT segments.register_lookup('defs', 'ho.mine', 'id', 'segments.segment_def')$$);
SELECT fails($$SELECT segments.register_relation('members', 'ho.mine', 'segments.mine_membership', 'id')$$);
RESET ROLE;
SELECT count(*) AS triggers_on_theirs FROM pg_trigger WHERE tgrelid = 'ho.theirs'::regclass;
-- TRIGGER privilege is enough.
GRANT TRIGGER ON ho.theirs TO seg_mallory;
SET ROLE seg_mallory;
SELECT segments.register_relation('granted', 'ho.mine', 'ho.theirs', 'contact_id');
RESET ROLE;
REVOKE TRIGGER ON ho.theirs FROM seg_mallory;

-- Every path that evaluates a filter checks, as the caller, every table it
-- reads, the source included.
CREATE TABLE ho.shared_contacts (id int PRIMARY KEY, score int);
INSERT INTO ho.shared_contacts SELECT i, i FROM generate_series(1, 5) AS i;
SELECT segments.register_source('ho.shared_contacts');
GRANT SELECT ON ho.shared_contacts TO seg_mallory;
SET ROLE seg_mallory;
SELECT segments.create_segment('peek', 'score > 2', 'static', 'ho.shared_contacts') IS NOT NULL AS created;
SELECT segments.create_segment('peek live', 'score > 2', source => 'ho.shared_contacts') IS NOT NULL AS created;
RESET ROLE;
REVOKE SELECT ON ho.shared_contacts FROM seg_mallory;
SET ROLE seg_mallory;
SELECT fails($$SELECT segments.redefine_segment('peek live', 'score > 4')$$);
SELECT fails($$SELECT segments.refresh_segment('peek')$$);
SELECT fails($$SELECT segments.refresh_segment('peek live')$$);
RESET ROLE;

-- Someone's personal segment through the planner: with row-level security
-- on a readable membership table, EXPLAIN ANALYZE showed "Rows Removed by
-- Filter: 10" for another role's personal segment, its size. The raw count
-- and membership tables are not readable; the views and functions show what
-- the role may see, and their plans hold no row of other segments.
CREATE TABLE ho.people (id int PRIMARY KEY, score int);
INSERT INTO ho.people SELECT i, i FROM generate_series(1, 20) AS i;
GRANT SELECT ON ho.people TO seg_victim, seg_mallory;
SELECT segments.register_source('ho.people');
SET ROLE seg_victim;
SELECT segments.create_segment('victim only', 'score > 10', source => 'ho.people', shared => false) IS NOT NULL AS created;
RESET ROLE;
SELECT segments.create_segment('everyone', 'score <= 3', source => 'ho.people') IS NOT NULL AS created;
SELECT id AS victim_id FROM segments.segment_def WHERE name = 'victim only' \gset
SET ROLE seg_mallory;
SELECT fails($$SELECT count(*) FROM segments.people_membership$$);
SELECT fails($$EXPLAIN ANALYZE SELECT * FROM segments.people_membership WHERE segment_id > 0$$);
SELECT fails($$SELECT count(*) FROM segments.count_delta$$);
SELECT name, member_count FROM segments.segment WHERE source = 'ho.people'::regclass ORDER BY name;
SELECT segment_name, count(*) FROM segments.members WHERE source = 'ho.people'::regclass GROUP BY 1 ORDER BY 1;
SELECT count(*) AS called_directly FROM segments._members_of(:victim_id);
SELECT segments.segments_of(15, 'ho.people') AS segments_of_15, segments.segments_of(2, 'ho.people') AS segments_of_2;
-- no plan node of the views returns or removes a membership row of the
-- victim's segment (10 members)
CREATE TEMP TABLE plan_lines (line text);
DO $$
DECLARE l text;
BEGIN
  FOR l IN EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
           SELECT * FROM segments.members WHERE source = 'ho.people'::regclass LOOP
    INSERT INTO plan_lines VALUES (l);
  END LOOP;
  FOR l IN EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
           SELECT * FROM segments.segment WHERE source = 'ho.people'::regclass LOOP
    INSERT INTO plan_lines VALUES (l);
  END LOOP;
END $$;
SELECT count(*) FILTER (WHERE line ~ '(rows=10 |Removed by [A-Za-z ]*: 10)') AS victim_sized_nodes,
       count(*) FILTER (WHERE line ~ 'people_membership') AS membership_scans
  FROM plan_lines;
RESET ROLE;
SET ROLE seg_victim;
SELECT segment_name, count(*) FROM segments.members WHERE source = 'ho.people'::regclass GROUP BY 1 ORDER BY 1;
SELECT segments.member_count('victim only') AS victim_count;
RESET ROLE;
SELECT segments.unregister_source('ho.people', true);

SELECT segments.unregister_source('ho.shared_contacts', true);
SELECT segments.unregister_source('ho.mine', true);
DROP SCHEMA ho CASCADE;
DROP ROLE seg_mallory;
DROP ROLE seg_victim;
DROP EXTENSION pg_segments CASCADE;
