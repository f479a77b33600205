-- Schema migrations of registered tables (SPEC §6): followed, or refused
-- with the segments named, never accepted and then failing every write.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_segments CASCADE;
CREATE EXTENSION pg_segments;
DROP SCHEMA IF EXISTS mg CASCADE;
DROP SCHEMA IF EXISTS mg2 CASCADE;
CREATE SCHEMA mg;
CREATE SCHEMA mg2;
SET search_path = mg, public;

\i tests/pg_regress/sql/helpers.psql
\i tests/pg_regress/sql/exact_helper.psql

CREATE TABLE mg.companies (id bigint PRIMARY KEY, country text);
CREATE TABLE mg.contacts (id bigint PRIMARY KEY, company_id bigint, score int, country text, note text);
CREATE TABLE mg.events (contact_id bigint, name text);
INSERT INTO mg.companies VALUES (1, 'DE'), (2, 'FR');
INSERT INTO mg.contacts SELECT i, 1 + i % 2, i, CASE WHEN i % 2 = 0 THEN 'DE' ELSE 'BR' END, 'x' FROM generate_series(1, 10) i;
INSERT INTO mg.events VALUES (1, 'open'), (2, 'click');
SELECT segments.register_source('mg.contacts');
SELECT segments.register_relation('events', 'mg.contacts', 'mg.events', 'contact_id');
SELECT segments.register_lookup('company', 'mg.contacts', 'company_id', 'mg.companies');
SELECT segments.create_segment('High', 'score > 5') IS NOT NULL AS created;
SELECT segments.create_segment('German', $$country = 'DE'$$) IS NOT NULL AS created;
SELECT segments.create_segment('Opened', $$ANY events (name = 'open')$$) IS NOT NULL AS created;
SELECT segments.create_segment('French company', $$company.country = 'FR'$$) IS NOT NULL AS created;
SELECT segments.create_segment('High openers', $$IN SEGMENT 'High' AND IN SEGMENT 'Opened'$$) IS NOT NULL AS created;

-- Renaming a column segments read is refused, naming them; an unread one is fine.
SELECT fails($$ALTER TABLE mg.contacts RENAME COLUMN country TO country_code$$);
SELECT fails($$ALTER TABLE mg.contacts RENAME COLUMN company_id TO company$$);
SELECT fails($$ALTER TABLE mg.events RENAME COLUMN name TO kind$$);
ALTER TABLE mg.contacts RENAME COLUMN note TO remark;
UPDATE mg.contacts SET country = 'DE', remark = 'y' WHERE id = 1;
INSERT INTO mg.contacts VALUES (11, 2, 9, 'DE', 'z');

-- Renaming and moving registered tables: writes keep working at once (the
-- compiled definitions named the old tables).
ALTER TABLE mg.events RENAME TO events_v2;
ALTER TABLE mg.companies SET SCHEMA mg2;
INSERT INTO mg.events_v2 VALUES (3, 'open');
UPDATE mg2.companies SET country = 'FR' WHERE id = 1;
UPDATE mg.contacts SET score = 1 WHERE id = 10;
SELECT * FROM exact('mg.contacts');

-- Widening a read column works; a type the definitions cannot read fails,
-- naming the segment.
ALTER TABLE mg.contacts ALTER COLUMN score TYPE bigint;
UPDATE mg.contacts SET score = 100 WHERE id = 2;
SELECT segments.is_member('High', 2) AS two_is_high;
SELECT fails($$ALTER TABLE mg.contacts ALTER COLUMN score TYPE text$$);
SELECT fails($$ALTER TABLE mg.contacts ALTER COLUMN id TYPE numeric$$);

-- Dropping a read column: refused, or with CASCADE drops the segments that
-- read it (and those referencing them) and nothing else: an UPDATE still
-- maintains the other segments.
SELECT fails($$ALTER TABLE mg.contacts DROP COLUMN score$$);
ALTER TABLE mg.contacts DROP COLUMN score CASCADE;
SELECT name FROM segments.segment WHERE source = 'mg.contacts'::regclass ORDER BY name;
UPDATE mg.contacts SET country = 'BR' WHERE id = 4;
SELECT segments.is_member('German', 4) AS four_still_german;
SELECT * FROM exact('mg.contacts');

-- Dropping a registered relation or lookup table: refused while segments
-- read it; with CASCADE they go, and the source keeps working.
SELECT fails($$DROP TABLE mg.events_v2$$);
DROP TABLE mg.events_v2 CASCADE;
SELECT fails($$DROP TABLE mg2.companies$$);
DROP TABLE mg2.companies CASCADE;
SELECT name FROM segments.segment WHERE source = 'mg.contacts'::regclass ORDER BY name;
SELECT name FROM segments.relation UNION ALL SELECT name FROM segments.lookup;
INSERT INTO mg.contacts VALUES (12, 1, 'DE', 'w');
SELECT segments.create_segment('Noted', $$remark = 'w'$$) IS NOT NULL AS created;
SELECT * FROM exact('mg.contacts');

-- Unlogged tables are refused: registered ones cannot become unlogged.
SELECT fails($$ALTER TABLE mg.contacts SET UNLOGGED$$);
CREATE UNLOGGED TABLE mg.scratch (id int PRIMARY KEY);
SELECT fails($$SELECT segments.register_source('mg.scratch')$$);

-- Dropping the source: refused while it has segments; with CASCADE the
-- registration, its segments and members go with it.
SELECT fails($$DROP TABLE mg.contacts$$);
DROP TABLE mg.contacts CASCADE;
SELECT count(*) AS sources FROM segments.source;
SELECT count(*) AS segments FROM segments.segment;
SELECT fails($$SELECT segments.member_count('German')$$);
SELECT to_regclass('segments.contacts_membership') IS NULL AS membership_gone;

DROP SCHEMA mg CASCADE;
DROP SCHEMA mg2 CASCADE;
DROP EXTENSION pg_segments;
