-- Bulk import (SPEC §11): many contacts into static segments in one call,
-- from arrays or from the (key, segment) rows of a table a CSV file was
-- copied into; the rules of assign(key, …), all or nothing.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_segments CASCADE;
DROP SCHEMA IF EXISTS im CASCADE;
DROP ROLE IF EXISTS im_other;
CREATE EXTENSION pg_segments;
CREATE SCHEMA im;
SET search_path = im, public;
\i tests/pg_regress/sql/helpers.psql

CREATE TABLE people (id bigint PRIMARY KEY, score int);
INSERT INTO people SELECT i, i FROM generate_series(1, 20) i;
SELECT segments.register_source('people');
-- The importing role, and another whose static segment the importer may
-- not change (and replace leaves alone).
CREATE ROLE im_user;
CREATE ROLE im_other;
GRANT USAGE ON SCHEMA im TO im_user, im_other;
GRANT SELECT ON im.people TO im_user, im_other;
SET ROLE im_other;
SELECT segments.create_segment('Theirs', NULL, 'static', 'im.people') IS NOT NULL AS created;
SELECT segments.add_members('Theirs', ARRAY[1, 16]);
SET ROLE im_user;
SELECT segments.create_segment('Fair', NULL, 'static') IS NOT NULL AS created;
SELECT segments.create_segment('Webinar', NULL, 'static') IS NOT NULL AS created;
SELECT segments.create_segment('Old list', NULL, 'static') IS NOT NULL AS created;
SELECT segments.create_segment('High', 'score > 15') IS NOT NULL AS created;
SELECT segments.create_segment('Fair and high', $$IN SEGMENT 'Fair' AND IN SEGMENT 'High'$$) IS NOT NULL AS created;
SELECT segments.add_members('Old list', ARRAY[1, 2, 3, 16, 17]);

-- Arrays: every key into every segment; unknown keys are reported.
SELECT segments.assign(ARRAY[1, 2, 16, 99], ARRAY['Fair', 'Webinar']);
SELECT name, member_count FROM segments.segment ORDER BY name;
-- The segment referencing a static one follows it.
SELECT array_agg(key::int ORDER BY key::int) AS fair_and_high FROM segments.members WHERE segment_name = 'Fair and high';

-- Rows: the (key, segment) pairs of a table, as a CSV file copied in.
RESET ROLE;
CREATE TABLE staging (contact_id bigint, segment text);
COPY staging FROM STDIN (FORMAT csv);
3,Fair
16,Webinar
17,Webinar
17,fair
98,Fair
\.
INSERT INTO staging VALUES (3, 'Spring promo'), (17, 'SPRING PROMO');
GRANT SELECT ON staging TO im_user;
SET ROLE im_user;
-- replace: each contact imported ends in exactly the segments the file
-- gives it, among the static segments the caller may change ('Theirs' is
-- not one); create_missing creates the segments the file names.
SELECT segments.assign_rows('TABLE staging', replace => true, create_missing => true);
SELECT name, array_agg(key::int ORDER BY key::int) AS members
  FROM segments.segment s LEFT JOIN segments.members m ON m.segment_id = s.id
 GROUP BY name ORDER BY name;
SELECT name, kind, owner::text FROM segments.segment WHERE name ILIKE 'spring promo';
SELECT segments.assign_rows('SELECT contact_id, segment FROM staging WHERE contact_id > 50');

-- All or nothing: an unknown segment, an active one, another's, a key
-- that is not of the key's type, a row without a segment.
SELECT fails($$SELECT segments.assign(ARRAY[4, 5], ARRAY['Fair', 'Nope'])$$);
SELECT fails($$SELECT segments.assign(ARRAY[4, 5], ARRAY['Fair', 'High'])$$);
SELECT fails($$SELECT segments.assign(ARRAY[4, 5], ARRAY['Fair', 'Theirs'])$$);
SELECT fails($$SELECT segments.assign(ARRAY['4', 'x'], ARRAY['Fair'])$$);
SELECT fails($$SELECT segments.assign_rows('SELECT 4, NULL::text')$$);
SELECT fails($$SELECT segments.assign(ARRAY[4, 5], ARRAY[]::text[], replace => true)$$);
BEGIN;
SELECT segments.assign_rows('VALUES (4, ''Fair''), (5, ''Brand new'')', create_missing => true);
ROLLBACK;
SELECT name, member_count FROM segments.segment ORDER BY name;
-- One key keeps its form (and the single-contact error).
SELECT segments.assign(4, ARRAY['Fair']);
SELECT fails($$SELECT segments.assign(99, ARRAY['Fair'])$$);
SELECT segments.is_member('Fair', 4);

-- Contacts the caller's row security hides are unknown to its import.
RESET ROLE;
ALTER TABLE people ENABLE ROW LEVEL SECURITY;
CREATE POLICY below_twenty ON people FOR SELECT USING (id < 20);
SET ROLE im_user;
SELECT segments.assign(ARRAY[19, 20], ARRAY['Webinar']);
RESET ROLE;
ALTER TABLE people DISABLE ROW LEVEL SECURITY;
RESET client_min_messages;
SELECT segments.unregister_source('im.people', true);
DROP SCHEMA im CASCADE;
DROP EXTENSION pg_segments;
DROP ROLE im_user;
DROP ROLE im_other;
