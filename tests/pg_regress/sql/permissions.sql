-- Personal segments and who may change what, checked as separate roles.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_segments CASCADE;
DROP SCHEMA IF EXISTS perm CASCADE;
DROP ROLE IF EXISTS seg_alice;
DROP ROLE IF EXISTS seg_bob;
DROP ROLE IF EXISTS seg_carol;
DROP ROLE IF EXISTS segments_admin;
CREATE EXTENSION pg_segments;
CREATE ROLE seg_alice;
CREATE ROLE seg_bob;
CREATE ROLE seg_carol;
CREATE ROLE segments_admin;
GRANT segments_admin TO seg_carol;
CREATE SCHEMA perm;
GRANT USAGE ON SCHEMA perm TO PUBLIC;
SET search_path = perm, public;

\i tests/pg_regress/sql/helpers.psql

CREATE TABLE perm.contacts (id int PRIMARY KEY, country text);
INSERT INTO perm.contacts SELECT i, (ARRAY['DE', 'BR'])[1 + i % 2] FROM generate_series(1, 10) AS i;
ALTER TABLE perm.contacts OWNER TO seg_alice;
GRANT SELECT ON perm.contacts TO seg_bob, seg_carol;
CREATE TABLE perm.secret (contact_id int, note text);   -- bob may not read it

-- Only the table's owner registers it
SET ROLE seg_bob;
SELECT fails($$SELECT segments.register_source('perm.contacts')$$);
RESET ROLE;
SET ROLE seg_alice;
SELECT segments.register_source('perm.contacts');
RESET ROLE;
SELECT segments.register_relation('secret', 'perm.contacts', 'perm.secret', 'contact_id');

-- Alice: a shared and a personal segment
SET ROLE seg_alice;
SELECT segments.create_segment('Shared DE', $$country = 'DE'$$) > 0 AS created;
SELECT segments.create_segment('Alice private', $$country = 'BR'$$, shared => false) > 0 AS created;
SELECT segments.create_segment('Alice list', NULL, 'static', shared => false) > 0 AS created;
SELECT segments.add_members('Alice list', ARRAY[1, 2]);
SELECT fails($$SELECT segments.create_segment('Shared on private', 'IN SEGMENT ''Alice private''')$$);
SELECT name, shared, owner FROM segments.segment ORDER BY name;
RESET ROLE;

-- Bob sees the shared segment only, through every table, view and function
SET ROLE seg_bob;
SELECT name FROM segments.segment ORDER BY name;
SELECT name FROM segments.segment_def ORDER BY name;
SELECT DISTINCT segment_name FROM segments.members ORDER BY 1;
SELECT count(*) AS visible_memberships FROM segments.members;
-- the raw tables are not readable (hostile.sql: what a plan over them shows)
SELECT fails($$SELECT count(*) FROM segments.contacts_membership$$);
SELECT fails($$SELECT count(*) FROM segments.count_delta$$);
RESET ROLE;
-- granted to a role, a membership table keeps its row-level security
GRANT SELECT ON segments.contacts_membership TO seg_bob;
SET ROLE seg_bob;
SELECT count(*) AS visible_memberships FROM segments.contacts_membership;
RESET ROLE;
REVOKE SELECT ON segments.contacts_membership FROM seg_bob;
SET ROLE seg_bob;
SELECT * FROM segments.segments_of(3);
SELECT fails($$SELECT segments.member_count('Alice private')$$);
SELECT fails($$SELECT segments.is_member('Alice private', 3)$$);
SELECT fails($$SELECT segments.dependents('Alice private')$$);
SELECT fails($$SELECT segments.drop_segment('Alice private')$$);
SELECT fails($$SELECT segments.add_members('Alice list', ARRAY[3])$$);
SELECT fails($$SELECT segments.create_segment('Bob on private', 'IN SEGMENT ''Alice private''', shared => false)$$);
SELECT * FROM segments.check($$IN SEGMENT 'Alice private'$$, 'perm.contacts');
-- ... may not change Alice's shared segment ...
SELECT fails($$SELECT segments.redefine_segment('Shared DE', 'country = ''BR''')$$);
SELECT fails($$SELECT segments.rename_segment('Shared DE', 'Mine')$$);
SELECT fails($$SELECT segments.drop_segment('Shared DE')$$);
SELECT fails($$SELECT segments.refresh_segment('Shared DE')$$);
-- ... may not write the catalog or the memberships directly ...
SELECT fails($$DELETE FROM segments.segment_def$$);
SELECT fails($$INSERT INTO segments.contacts_membership VALUES (1, 1)$$);
SELECT fails($$SELECT segments.unregister_source('perm.contacts', true)$$);
-- ... may not build a segment on a table it cannot read ...
SELECT fails($$SELECT segments.create_segment('Bob secret', 'ANY secret')$$);
-- ... but may create its own segments
SELECT segments.create_segment('Bob DE', $$IN SEGMENT 'Shared DE'$$, shared => false) > 0 AS created;
SELECT name, member_count FROM segments.segment ORDER BY name;
RESET ROLE;

-- Names are unique across roles (the error says only that the name is taken)
SET ROLE seg_bob;
SELECT fails($$SELECT segments.create_segment('alice PRIVATE', 'country = ''DE''')$$);
RESET ROLE;

-- An admin sees and may change everything
SET ROLE seg_carol;
SELECT name FROM segments.segment ORDER BY name;
SELECT segments.member_count('Alice private');
SELECT segments.rename_segment('Bob DE', 'Bob DE (renamed by admin)');
SELECT segments.drop_segment('Alice list');
RESET ROLE;

-- The owner sees its own personal segments
SET ROLE seg_alice;
SELECT name FROM segments.segment ORDER BY name;
RESET ROLE;

-- is_member remembers per role what it found, until roles, role
-- memberships or the segment catalog change (all in this one session)
SET ROLE seg_alice;
SELECT segments.is_member('Alice private', 3) AS alice_3, segments.is_member('Alice private', 4) AS alice_4;
RESET ROLE;
SET ROLE seg_bob;
SELECT fails($$SELECT segments.is_member('Alice private', 3)$$);
RESET ROLE;
GRANT seg_alice TO seg_bob;
SET ROLE seg_bob;
SELECT segments.is_member('Alice private', 3) AS bob_in_alice_3;
RESET ROLE;
REVOKE seg_alice FROM seg_bob;
SET ROLE seg_bob;
SELECT fails($$SELECT segments.is_member('Alice private', 3)$$);
RESET ROLE;
SET ROLE seg_alice;
SELECT segments.drop_segment('Alice private');
SELECT segments.create_segment('Alice private', $$country = 'DE'$$, shared => false) > 0 AS recreated;
SELECT segments.is_member('Alice private', 3) AS alice_3, segments.is_member('Alice private', 4) AS alice_4;
SELECT segments.drop_segment('Alice private');
SELECT fails($$SELECT segments.is_member('Alice private', 4)$$);
RESET ROLE;

SELECT segments.unregister_source('perm.contacts', true);
DROP SCHEMA perm CASCADE;
DROP ROLE seg_alice;
DROP ROLE seg_bob;
DROP ROLE seg_carol;
DROP ROLE segments_admin;
