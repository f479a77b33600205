-- Registration, the segment catalog, static segments and the reading API.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_segments CASCADE;
CREATE EXTENSION pg_segments;
CREATE SCHEMA crm;
SET search_path = crm, public;
\pset null '(null)'

\i tests/pg_regress/sql/helpers.psql

CREATE TABLE companies (id bigint PRIMARY KEY, name text, country text);
INSERT INTO companies VALUES (1, 'ACME', 'DE'), (2, 'Globex', 'BR'), (3, 'Initech', 'AT');
CREATE TABLE contacts (
  id bigint PRIMARY KEY, email text, country text, score int, company_id bigint, created_at timestamptz DEFAULT now());
INSERT INTO contacts (id, email, country, score, company_id)
SELECT i, 'c' || i || '@example.com', (ARRAY['DE', 'BR', 'AT', NULL])[1 + i % 4], i, 1 + i % 3
  FROM generate_series(1, 40) AS i;
CREATE TABLE events (id serial PRIMARY KEY, contact_id bigint, name text, at timestamptz DEFAULT now());
INSERT INTO events (contact_id, name) SELECT 1 + i % 10, 'email_opened' FROM generate_series(1, 35) AS i;
CREATE TABLE deals (id serial PRIMARY KEY, contact_id bigint, stage text, amount numeric);
INSERT INTO deals (contact_id, stage, amount) VALUES (1, 'won', 6000), (2, 'won', 100), (3, 'lost', 9000);
CREATE TABLE leads (id uuid PRIMARY KEY, source text);
INSERT INTO leads VALUES ('11111111-1111-1111-1111-111111111111', 'ads'), ('22222222-2222-2222-2222-222222222222', 'web');
CREATE TABLE no_key (email text);
CREATE TABLE float_key (id numeric PRIMARY KEY);
CREATE TABLE dup_key (id bigint, other bigint PRIMARY KEY);
CREATE VIEW contacts_view AS SELECT * FROM contacts;
-- Partitioned tables and partitions are refused (README, "Deviations from
-- the spec"): their row triggers fire on the partitions.
CREATE TABLE parted (id bigint PRIMARY KEY, contact_id bigint) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);

-- Registration
SELECT segments.register_source('contacts');
SELECT segments.register_source('leads');
SELECT relid, key_column, key_type, membership FROM segments.source ORDER BY relid::text;
\d segments.contacts_membership
SELECT fails($$SELECT segments.register_source('contacts')$$);
SELECT fails($$SELECT segments.register_source('no_key')$$);
SELECT fails($$SELECT segments.register_source('no_key', 'nope')$$);
SELECT fails($$SELECT segments.register_source('float_key')$$);
SELECT fails($$SELECT segments.register_source('dup_key', 'id')$$);
SELECT fails($$SELECT segments.register_source('contacts_view', 'id')$$);
SELECT fails($$SELECT segments.register_source('missing_table')$$);
SELECT fails($$SELECT segments.register_source('parted')$$);
SELECT fails($$SELECT segments.register_source('parted_1')$$);

SELECT segments.register_relation('events', 'contacts', 'events', 'contact_id');
SELECT segments.register_relation('deals', 'contacts', 'deals', 'contact_id');
SELECT segments.register_lookup('company', 'contacts', 'company_id', 'companies');
SELECT fails($$SELECT segments.register_relation('events', 'contacts', 'events', 'contact_id')$$);
SELECT fails($$SELECT segments.register_relation('x', 'contacts', 'events', 'nope')$$);
SELECT fails($$SELECT segments.register_relation('x', 'contacts', 'events', 'name')$$);
SELECT fails($$SELECT segments.register_relation('x', 'companies', 'events', 'contact_id')$$);
SELECT fails($$SELECT segments.register_lookup('x', 'contacts', 'company_id', 'companies', 'country')$$);
SELECT fails($$SELECT segments.register_lookup('x', 'contacts', 'nope', 'companies')$$);
SELECT fails($$SELECT segments.register_relation('x', 'contacts', 'parted', 'contact_id')$$);
SELECT fails($$SELECT segments.register_relation('x', 'contacts', 'contacts_view', 'id')$$);
SELECT fails($$SELECT segments.register_lookup('x', 'contacts', 'company_id', 'parted')$$);

-- UPDATE triggers exist only while an active segment reads the table
SELECT tgname FROM pg_trigger WHERE tgrelid = 'contacts'::regclass AND NOT tgisinternal ORDER BY 1;

-- Creating segments: text and JSON forms, active and static
SELECT segments.create_segment('Germans', $$country = 'DE'$$, source => 'contacts') AS id;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'contacts'::regclass AND NOT tgisinternal ORDER BY 1;
SELECT segments.create_segment('Openers', 'COUNT events >= 4', source => 'contacts',
                               description => 'opened at least 4 emails') AS id;
SELECT segments.create_segment('DACH openers', $$IN SEGMENT 'Openers' AND company.country IN ('DE','AT','CH')$$,
                               source => 'contacts') AS id;
SELECT segments.create_segment('Big deals',
  '{"type":"exists","relation":{"name":"deals"},"filter":{"type":"condition",
    "operand":{"type":"field","path":[{"name":"amount"}]},
    "test":{"op":"compare","cmp":">","value":{"type":"number","value":5000}}}}'::jsonb,
  source => 'contacts') AS id;
SELECT segments.create_segment('VIP list', NULL, 'static', 'contacts') AS id;
SELECT segments.create_segment('High scorers (snapshot)', 'score > 35', 'static', 'contacts') AS id;
SELECT segments.create_segment('Ad leads', $$source = 'ads'$$, source => 'leads') AS id;
SELECT name, kind, source, definition, description, shared, track_changes, member_count,
       refreshed_at IS NOT NULL AS refreshed
  FROM segments.segment ORDER BY id;

-- Member counts equal the membership, without scanning it
SELECT s.name, s.member_count, (SELECT count(*) FROM segments.members m WHERE m.segment_id = s.id) AS actual
  FROM segments.segment s ORDER BY s.id;

SELECT fails($$SELECT segments.create_segment('germans', 'score > 1', source => 'contacts')$$);
SELECT fails($$SELECT segments.create_segment('X', 'score > 1')$$);
SELECT fails($$SELECT segments.create_segment('X', 'score > 1', 'dynamic', 'contacts')$$);
SELECT fails($$SELECT segments.create_segment('X', NULL, 'active', 'contacts')$$);
SELECT fails($$SELECT segments.create_segment('X', 'scor > 1', source => 'contacts')$$);
SELECT fails($$SELECT segments.create_segment('X', 'ANY evnts', source => 'contacts')$$);
SELECT fails($$SELECT segments.create_segment('X', 'IN SEGMENT ''Nobody''', source => 'contacts')$$);
SELECT fails($$SELECT segments.create_segment('X', 'IN SEGMENT ''Ad leads''', source => 'contacts')$$);
SELECT fails($$SELECT segments.create_segment('X', 'score >', source => 'contacts')$$);
SELECT fails($$SELECT segments.create_segment('', 'score > 1', source => 'contacts')$$);
SELECT fails($$SELECT segments.create_segment('X', 'score > 1', source => 'no_key')$$);
SELECT count(*) AS segments_after_failures FROM segments.segment;

-- Static membership
SELECT segments.add_members('VIP list', ARRAY[1, 2, 3, 999]::bigint[]) AS added;
SELECT segments.add_members('VIP list', ARRAY[3, 4]) AS added;
SELECT segments.remove_members('VIP list', ARRAY[2, 998]::bigint[]) AS removed;
SELECT fails($$SELECT segments.add_members('Germans', ARRAY[1])$$);
SELECT fails($$SELECT segments.add_members('VIP list', ARRAY['x'])$$);
SELECT fails($$SELECT segments.add_members('Nobody', ARRAY[1])$$);
SELECT segments.create_segment('Newsletter', NULL, 'static', 'contacts') AS id;
SELECT segments.assign(5::bigint, ARRAY['Newsletter', 'VIP list']);
SELECT * FROM segments.segments_of(5::bigint);
-- an unknown segment name fails the whole import row and changes nothing
SELECT fails($$SELECT segments.assign(6::bigint, ARRAY['Newsletter', 'Nope'])$$);
SELECT fails($$SELECT segments.assign(6::bigint, ARRAY['Newsletter', 'Germans'])$$);
SELECT fails($$SELECT segments.assign(999::bigint, ARRAY['Newsletter'])$$);
SELECT * FROM segments.segments_of(6::bigint);
-- replace: the contact leaves every other static segment
SELECT segments.assign(5::bigint, ARRAY['Newsletter'], replace => true);
SELECT * FROM segments.segments_of(5::bigint);

-- Reading
SELECT segments.is_member('Germans', 4::bigint) AS four, segments.is_member('germans', 5::bigint) AS five;
SELECT segments.member_count('Germans'), segments.member_count('VIP list');
SELECT * FROM segments.segments_of(1::bigint);
SELECT * FROM segments.segments_of('11111111-1111-1111-1111-111111111111'::uuid);
-- segments_of remembers how to read a source until the registrations change
CREATE TABLE partners (id bigint PRIMARY KEY);
SELECT segments.register_source('partners');
SELECT fails($$SELECT * FROM segments.segments_of(1::bigint)$$);
SELECT * FROM segments.segments_of(1::bigint, 'contacts');
SELECT segments.unregister_source('partners');
SELECT * FROM segments.segments_of(1::bigint);
DROP TABLE partners;
SELECT segment_name, key FROM segments.members WHERE segment_name = 'VIP list' ORDER BY key;
SELECT c.id, c.email FROM contacts c JOIN segments.contacts_membership m ON m.id = c.id
 WHERE m.segment_id = (SELECT id FROM segments.segment WHERE name = 'DACH openers') ORDER BY c.id;
SELECT * FROM segments.dependents('Openers');
SELECT fails($$SELECT segments.member_count('Nobody')$$);
SELECT fails($$SELECT segments.is_member('Germans', 'abc'::text)$$);

-- check/explain see registered relations, lookups and segments
SELECT * FROM segments.check($$IN SEGMENT 'Germans' AND ANY deals (stage = 'won')$$, 'contacts');
SELECT * FROM segments.check('ANY dealz', 'contacts');

-- Redefining recomputes the segment and the active segments that use it
SELECT segments.redefine_segment('Openers', 'COUNT events >= 3');
SELECT name, member_count FROM segments.segment WHERE name IN ('Openers', 'DACH openers') ORDER BY name;
SELECT fails($$SELECT segments.redefine_segment('Openers', 'IN SEGMENT ''DACH openers''')$$);
SELECT fails($$SELECT segments.redefine_segment('Openers', 'IN SEGMENT ''Openers''')$$);
SELECT fails($$SELECT segments.redefine_segment('Openers', 'bogus')$$);
SELECT definition FROM segments.segment WHERE name = 'Openers';

-- Renaming rewrites the definitions that reference the segment
SELECT segments.rename_segment('Openers', 'Engaged');
SELECT name, definition FROM segments.segment WHERE name IN ('Engaged', 'DACH openers') ORDER BY name;
SELECT fails($$SELECT segments.rename_segment('Engaged', 'GERMANS')$$);
SELECT segments.rename_segment('Engaged', 'engaged');

-- Static snapshots change only when asked
UPDATE contacts SET score = 100 WHERE id = 1;
SELECT segments.member_count('High scorers (snapshot)') AS before_refresh;
SELECT segments.refresh_segment('High scorers (snapshot)') AS after_refresh;
-- refresh repairs an active segment
DELETE FROM segments.contacts_membership WHERE segment_id = (SELECT id FROM segments.segment WHERE name = 'Germans');
SELECT segments.refresh_segment('Germans') AS repaired;

-- Freezing keeps the members and stops following the filter
SELECT segments.freeze_segment('Big deals');
SELECT kind, member_count FROM segments.segment WHERE name = 'Big deals';
SELECT fails($$SELECT segments.freeze_segment('Big deals')$$);

-- Contacts that go leave every segment; a changed key takes its memberships along
SELECT * FROM segments.segments_of(3::bigint);
DELETE FROM contacts WHERE id = 3;
SELECT count(*) AS memberships_of_3 FROM segments.contacts_membership WHERE id = 3;
UPDATE contacts SET id = 1000 WHERE id = 4;
SELECT * FROM segments.segments_of(1000::bigint);
SELECT s.name, s.member_count, (SELECT count(*) FROM segments.members m WHERE m.segment_id = s.id) AS actual
  FROM segments.segment s ORDER BY s.id;

-- A member row changed in place (entered_at: a HOT update) is still found
-- when its contact leaves
UPDATE segments.contacts_membership SET entered_at = entered_at - interval '1 day'
 WHERE id = 8 AND segment_id = (SELECT id FROM segments.segment WHERE name = 'Germans');
UPDATE contacts SET country = 'FR' WHERE id = 8;
SELECT segments.is_member('Germans', 8::bigint) AS still_member,
       segments.member_count('Germans') AS counted,
       (SELECT count(*) FROM segments.contacts_membership m JOIN segments.segment s ON s.id = m.segment_id
         WHERE s.name = 'Germans') AS actual;
UPDATE contacts SET country = 'DE' WHERE id = 8;
SELECT segments.is_member('Germans', 8::bigint) AS back;
-- A leaving member is looked up through the index on (key, segment_id)
-- (whose leaf the contact's other entries share), not through the primary
-- key (the counts are kept until a transaction ends idle: differences taken)
CREATE TABLE probed (id bigint PRIMARY KEY, v int);
SELECT segments.register_source('probed');
SELECT segments.create_segment('Probed positive', 'v > 0', source => 'probed') IS NOT NULL AS created;
SELECT segments.create_segment('Probed big', 'v > 5', source => 'probed') IS NOT NULL AS created;
INSERT INTO probed VALUES (1, 9), (2, 9);
BEGIN;
SELECT pg_stat_get_xact_numscans('segments.probed_membership_id_segment_id_idx'::regclass) AS key_scans,
       pg_stat_get_xact_numscans('segments.probed_membership_pkey'::regclass) AS pk_scans \gset
UPDATE probed SET v = 0 WHERE id = 1;
SELECT pg_stat_get_xact_numscans('segments.probed_membership_id_segment_id_idx'::regclass) - :key_scans AS key_index_scans,
       pg_stat_get_xact_numscans('segments.probed_membership_pkey'::regclass) - :pk_scans AS primary_key_scans,
       (SELECT array_agg(id ORDER BY id) FROM segments.probed_membership) AS members;
ROLLBACK;
-- A membership table whose key index is on the key alone (an older
-- registration's): the contact's rows there, then the primary key
DROP INDEX segments.probed_membership_id_segment_id_idx;
CREATE INDEX probed_membership_id_idx ON segments.probed_membership (id);
UPDATE probed SET v = 3 WHERE id = 1;
UPDATE probed SET v = 0 WHERE id = 2;
SELECT m.id, s.name FROM segments.probed_membership m JOIN segments.segment s ON s.id = m.segment_id ORDER BY 1, 2;
SELECT segments.member_count('Probed positive') AS positive, segments.member_count('Probed big') AS big;
SELECT segments.drop_segment('Probed big');
SELECT segments.drop_segment('Probed positive');
SELECT segments.unregister_source('probed');
DROP TABLE probed;
-- A member already there (written by hand, past the triggers) is neither
-- inserted twice nor counted again when its contact enters
BEGIN;
SELECT segments.member_count('Germans') AS germans_before \gset
INSERT INTO segments.contacts_membership (segment_id, id) SELECT id, 9 FROM segments.segment WHERE name = 'Germans';
UPDATE contacts SET country = 'DE' WHERE id = 9;
SELECT count(*) AS rows_of_9, segments.member_count('Germans') - :germans_before AS counted_again
  FROM segments.contacts_membership m JOIN segments.segment s ON s.id = m.segment_id
 WHERE s.name = 'Germans' AND m.id = 9;
ROLLBACK;

-- UPDATE triggers fire only for UPDATEs that name a column segments read
-- (or one that ties rows to contacts); nothing is called for the others
SELECT pg_get_triggerdef(oid) FROM pg_trigger
 WHERE tgrelid = 'contacts'::regclass AND tgname LIKE 'segments_maintain_update%' ORDER BY tgname;
SET track_functions = 'all';
BEGIN;
UPDATE contacts SET email = 'x' || email WHERE id = 5;
SELECT count(*) AS maintain_called FROM pg_stat_xact_user_functions WHERE funcname = 'maintain';
UPDATE contacts SET country = country WHERE id = 5;
SELECT calls AS maintain_calls FROM pg_stat_xact_user_functions WHERE funcname = 'maintain';
COMMIT;
RESET track_functions;
-- a BEFORE UPDATE row trigger may change columns the UPDATE does not name:
-- from its creation on, they fire for every UPDATE
CREATE FUNCTION contacts_promote() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.email LIKE 'vip%' THEN NEW.country := 'DE'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER contacts_promote BEFORE UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION contacts_promote();
SELECT pg_get_triggerdef(oid) FROM pg_trigger
 WHERE tgrelid = 'contacts'::regclass AND tgname LIKE 'segments_maintain_update%' ORDER BY tgname;
SELECT segments.is_member('Germans', 30::bigint) AS before_promotion;
UPDATE contacts SET email = 'vip30@example.com' WHERE id = 30;
SELECT segments.is_member('Germans', 30::bigint) AS after_promotion;
-- ... and they keep doing so when segments change
SELECT segments.redefine_segment('Germans', $$country = 'DE'$$);
SELECT pg_get_triggerdef(oid) FROM pg_trigger
 WHERE tgrelid = 'contacts'::regclass AND tgname = 'segments_maintain_update_row';
DROP TRIGGER contacts_promote ON contacts;
DROP FUNCTION contacts_promote();

-- Dropping never touches contacts; referenced segments need cascade
SELECT count(*) AS contacts_before FROM contacts;
SELECT fails($$SELECT segments.drop_segment('engaged')$$);
SELECT segments.drop_segment('engaged', cascade => true);
SELECT segments.drop_segment('VIP list');
SELECT name FROM segments.segment ORDER BY id;
SELECT count(*) AS contacts_after FROM contacts;
SELECT count(*) AS orphan_memberships FROM segments.contacts_membership m
 WHERE NOT EXISTS (SELECT FROM segments.segment s WHERE s.id = m.segment_id);
SELECT fails($$SELECT segments.drop_segment('Nobody')$$);

-- TRUNCATE empties every segment of the source
TRUNCATE events;
TRUNCATE contacts;
SELECT name, member_count FROM segments.segment ORDER BY id;

-- Unregistering refuses while segments exist
SELECT fails($$SELECT segments.unregister_source('contacts')$$);
SELECT segments.unregister_source('contacts', cascade => true);
SELECT relid FROM segments.source;
SELECT name FROM segments.segment;
SELECT to_regclass('segments.contacts_membership') AS membership_table;
SELECT fails($$SELECT segments.unregister_source('contacts')$$);
-- the one remaining source need not be named
SELECT segments.create_segment('Web leads', $$source = 'web'$$) AS id;
SELECT segments.explain($$source = 'web'$$);

-- A uuid key (passed by reference): row-local segments follow attribute
-- updates and key changes, and new rows enter them.
UPDATE leads SET source = 'web' WHERE source = 'ads';
INSERT INTO leads VALUES ('33333333-3333-3333-3333-333333333333', 'web'), ('44444444-4444-4444-4444-444444444444', 'ads');
UPDATE leads SET id = '55555555-5555-5555-5555-555555555555' WHERE id = '22222222-2222-2222-2222-222222222222';
SELECT s.name, m.id, s.member_count
  FROM segments.leads_membership m JOIN segments.segment s ON s.id = m.segment_id ORDER BY s.name, m.id;

-- Relation rows count only where they pass a segment's filter: a row
-- changed into one the segment counts moves its contact in, a row changed
-- out of it moves it out, rows passing no filter change nothing.
CREATE TABLE lead_events (lead_id uuid, name text);
SELECT segments.register_relation('lead_events', 'leads', 'lead_events', 'lead_id');
SELECT segments.create_segment('Lead clickers', $$COUNT lead_events (name = 'click') >= 1$$) AS id \gset
INSERT INTO lead_events VALUES ('33333333-3333-3333-3333-333333333333', 'bounce');
SELECT id FROM segments.leads_membership WHERE segment_id = :id;
UPDATE lead_events SET name = 'click' WHERE name = 'bounce';
SELECT id FROM segments.leads_membership WHERE segment_id = :id;
UPDATE lead_events SET name = 'bounce' WHERE name = 'click';
SELECT id FROM segments.leads_membership WHERE segment_id = :id;
INSERT INTO lead_events VALUES ('33333333-3333-3333-3333-333333333333', 'click');
SELECT id FROM segments.leads_membership WHERE segment_id = :id;
DELETE FROM lead_events WHERE name = 'click';
SELECT id, (SELECT member_count FROM segments.segment WHERE id = :id) FROM segments.leads_membership WHERE segment_id = :id;

-- A transition table larger than work_mem (spilled to disk) is read whole:
-- rows of two contacts and of none, rows passing the filter only near the
-- end; then the same for the deleted rows.
SET work_mem = '64kB';
INSERT INTO lead_events
SELECT (ARRAY[NULL, '11111111-1111-1111-1111-111111111111', '33333333-3333-3333-3333-333333333333']::uuid[])[1 + i % 3],
       CASE WHEN i BETWEEN 5998 AND 6000 THEN 'click' ELSE 'bounce' END
  FROM generate_series(1, 6000) AS i;
SELECT id, (SELECT member_count FROM segments.segment WHERE id = :id) FROM segments.leads_membership WHERE segment_id = :id ORDER BY id;
DELETE FROM lead_events WHERE name = 'click' AND lead_id = '11111111-1111-1111-1111-111111111111';
SELECT id, (SELECT member_count FROM segments.segment WHERE id = :id) FROM segments.leads_membership WHERE segment_id = :id ORDER BY id;
DELETE FROM lead_events;
SELECT count(*) AS members, (SELECT member_count FROM segments.segment WHERE id = :id) FROM segments.leads_membership WHERE segment_id = :id;
RESET work_mem;

-- A source whose key lost its unique index since registration: a recompute
-- by contact locks the contacts by a statement instead of through the index
-- (maintain::lock_contacts).
CREATE TABLE noidx (id bigint PRIMARY KEY);
CREATE TABLE noidx_events (contact_id bigint);
INSERT INTO noidx VALUES (1), (2);
SELECT segments.register_source('noidx');
SELECT segments.register_relation('events', 'noidx', 'noidx_events', 'contact_id');
SELECT segments.create_segment('noidx active', 'ANY events', source => 'noidx') AS noidx_id \gset
ALTER TABLE noidx DROP CONSTRAINT noidx_pkey;
INSERT INTO noidx_events VALUES (2);
SELECT id, (SELECT member_count FROM segments.segment WHERE id = :noidx_id) FROM segments.noidx_membership WHERE segment_id = :noidx_id;
DELETE FROM noidx_events;
SELECT count(*) AS members, (SELECT member_count FROM segments.segment WHERE id = :noidx_id) FROM segments.noidx_membership WHERE segment_id = :noidx_id;
SELECT segments.unregister_source('noidx', true);
DROP TABLE noidx, noidx_events;

-- A recompute by contact writes the flips of a few contacts one by one and
-- those of many (over maintain::FEW_CONTACTS) in one statement: both agree
-- with the definition and with the count.
CREATE TABLE many (id bigint PRIMARY KEY);
CREATE TABLE many_events (contact_id bigint);
INSERT INTO many SELECT generate_series(1, 200);
SELECT segments.register_source('many');
SELECT segments.register_relation('events', 'many', 'many_events', 'contact_id');
SELECT segments.create_segment('many active', 'COUNT events >= 2', source => 'many') IS NOT NULL AS created;
CREATE VIEW many_check AS
SELECT (SELECT count(*) FROM segments.many_membership m JOIN segments.segment s ON s.id = m.segment_id
         WHERE s.name = 'many active') AS members,
       (SELECT member_count FROM segments.segment WHERE name = 'many active') AS counted,
       (SELECT count(*) FROM many m WHERE (SELECT count(*) FROM many_events e WHERE e.contact_id = m.id) >= 2) AS expected;
INSERT INTO many_events SELECT generate_series(1, 200);
SELECT * FROM many_check;
INSERT INTO many_events SELECT generate_series(1, 150);
SELECT * FROM many_check;
DELETE FROM many_events WHERE ctid IN (SELECT min(ctid) FROM many_events WHERE contact_id <= 100 GROUP BY contact_id);
SELECT * FROM many_check;
INSERT INTO many_events VALUES (1), (2);
SELECT * FROM many_check;
DELETE FROM many_events WHERE contact_id = 150 AND ctid = (SELECT min(ctid) FROM many_events WHERE contact_id = 150);
SELECT * FROM many_check;
DROP VIEW many_check;
SELECT segments.unregister_source('many', true);
DROP TABLE many, many_events;

-- Rows inserted into a relation decide ANY, NO and count-of-one segments
-- without a query (maintain::maintain_relation), for the contacts that
-- exist under the rows' keys; the other segments are recomputed. After each
-- write the stored members equal the definitions evaluated afresh.
CREATE TABLE decided (id bigint PRIMARY KEY, country text);
CREATE TABLE decided_events (contact_id bigint, name text);
INSERT INTO decided VALUES (1, 'DE'), (2, 'DE'), (3, 'BR');
SELECT segments.register_source('decided');
SELECT segments.register_relation('events', 'decided', 'decided_events', 'contact_id');
SELECT segments.create_segment('decided opened', $$ANY events (name = 'open')$$, source => 'decided', track_changes => true) IS NOT NULL AS created;
SELECT segments.create_segment('decided never', $$NO events (name = 'open')$$, source => 'decided', track_changes => true) IS NOT NULL AS created;
SELECT segments.create_segment('decided counted', $$COUNT events (name = 'open') > 0$$, source => 'decided') IS NOT NULL AS created;
SELECT segments.create_segment('decided not zero', $$NOT COUNT events (name = 'open') = 0$$, source => 'decided') IS NOT NULL AS created;
SELECT segments.create_segment('decided twice', $$COUNT events (name = 'open') >= 2$$, source => 'decided') IS NOT NULL AS created;
SELECT segments.create_segment('decided DE opened', $$IN SEGMENT 'decided opened' AND country = 'DE'$$, source => 'decided') IS NOT NULL AS created;
CREATE FUNCTION decided_check() RETURNS TABLE (segment text, members bigint[], member_count bigint, exact boolean)
LANGUAGE plpgsql AS $f$
DECLARE s record;
BEGIN
  FOR s IN SELECT g.id, g.name, g.definition, g.member_count FROM segments.segment g WHERE g.source = 'decided'::regclass ORDER BY g.id LOOP
    segment := s.name;
    member_count := s.member_count;
    members := ARRAY(SELECT m.id FROM segments.decided_membership m WHERE m.segment_id = s.id ORDER BY m.id);
    EXECUTE format('SELECT ARRAY(SELECT id FROM decided WHERE %s ORDER BY id) = $1', segments.explain(s.definition, 'decided'))
      INTO exact USING members;
    exact := exact AND cardinality(members) = s.member_count;
    RETURN NEXT;
  END LOOP;
END $f$;
-- contact 9 does not exist; two rows of contact 3 in one statement
INSERT INTO decided_events VALUES (1, 'open'), (2, 'click'), (9, 'open'), (3, 'open'), (3, 'open');
SELECT * FROM decided_check();
INSERT INTO decided_events VALUES (1, 'open');
SELECT * FROM decided_check();
DELETE FROM decided_events WHERE contact_id = 1;
SELECT * FROM decided_check();
-- a contact deleted, or given another key, earlier in the transaction
BEGIN;
DELETE FROM decided WHERE id = 2;
UPDATE decided SET id = 4 WHERE id = 3;
INSERT INTO decided_events VALUES (2, 'open'), (3, 'open');
COMMIT;
SELECT * FROM decided_check();
-- what a rolled-back subtransaction decided is gone with it
INSERT INTO decided VALUES (5, 'DE');
BEGIN;
SAVEPOINT s;
INSERT INTO decided_events VALUES (5, 'open');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT * FROM decided_check();
SELECT s.name, c.key, c.change FROM segments.changes c JOIN segments.segment s ON s.id = c.segment_id
 WHERE s.source = 'decided'::regclass ORDER BY c.id;
DROP FUNCTION decided_check();
SELECT segments.unregister_source('decided', true);
DROP TABLE decided, decided_events;

-- NOTIFY payloads stay under PostgreSQL's 8,000-byte limit however many
-- tracked segments one statement changes (120 with 75-character names took
-- one UPDATE down with "payload string too long"): the summary is split into
-- whole JSON documents, every segment in exactly one.
CREATE TABLE loud (id int PRIMARY KEY, score int);
INSERT INTO loud SELECT i, 0 FROM generate_series(1, 3) i;
SELECT segments.register_source('loud');
SELECT count(segments.create_segment(format('a tracked segment with a long, descriptive name, number %s of many', lpad(i::text, 3, '0')),
                                     'score > 0', source => 'loud', track_changes => true)) AS created
  FROM generate_series(1, 120) i;
LISTEN segments;
\o /tmp/pg_segments_loud_notifications.txt
UPDATE loud SET score = 1;
\o
UNLISTEN segments;
-- notifications received, the longest line, and every segment named once
\! grep -c 'payload' /tmp/pg_segments_loud_notifications.txt
\! awk 'match($0, /\{"source".*\]\}/) { if (RLENGTH > m) m = RLENGTH } END { print (m > 0 && m < 8000) ? "every payload under 8000 bytes" : "payload of " m " bytes" }' /tmp/pg_segments_loud_notifications.txt
\! grep -o 'number [0-9]* of many' /tmp/pg_segments_loud_notifications.txt | sort -u | wc -l
SELECT count(*) AS members FROM segments.members m JOIN segments.segment s ON s.id = m.segment_id WHERE s.source = 'loud'::regclass;
-- Reading is read-only: no transaction id, no commit record, and so it
-- works on a hot standby (every member_count call used to take an XID).
BEGIN;
SELECT segments.member_count('a tracked segment with a long, descriptive name, number 001 of many') AS n,
       segments.is_member('a tracked segment with a long, descriptive name, number 001 of many', 1) AS one,
       (SELECT count(*) FROM segments.segments_of(1)) AS of_one,
       (SELECT count(*) FROM segments.members) AS members,
       (SELECT sum(member_count) FROM segments.segment) AS counted;
SELECT txid_current_if_assigned() IS NULL AS read_only;
COMMIT;
SELECT segments.unregister_source('loud', true);
DROP TABLE loud;

-- A row of a relation that decides a segment for a contact already in it
-- (a second "open") writes nothing: an insert taken back would still reach
-- logical decoding (a duplicate on a subscriber, a false "leave" in CDC)
-- and bloat the membership table.
\i tests/pg_regress/sql/exact_helper.psql
CREATE TABLE again (id int PRIMARY KEY);
CREATE TABLE again_events (contact_id int, name text);
INSERT INTO again VALUES (1), (2);
SELECT segments.register_source('again');
SELECT segments.register_relation('events', 'again', 'again_events', 'contact_id');
SELECT segments.create_segment('opened again', $$ANY events (name = 'open')$$, source => 'again') IS NOT NULL AS created;
INSERT INTO again_events VALUES (1, 'open');
-- (counts of earlier transactions may still be pending in the backend)
SELECT pg_stat_force_next_flush();
BEGIN;
INSERT INTO again_events VALUES (1, 'open'), (1, 'open');
INSERT INTO again_events VALUES (1, 'open');
SELECT n_tup_ins AS inserted, n_tup_del AS deleted FROM pg_stat_xact_user_tables
 WHERE relid = 'segments.again_membership'::regclass;
COMMIT;
SELECT * FROM exact('again');
SELECT segments.unregister_source('again', true);
DROP TABLE again, again_events;
