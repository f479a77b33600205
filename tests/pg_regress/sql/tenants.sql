-- Tenants (SPEC §7): one contacts table holds every customer account's
-- contacts; each account has its own segments, used through one pooled
-- role that says per transaction which tenant it acts for.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_segments CASCADE;
DROP SCHEMA IF EXISTS tn CASCADE;
DROP ROLE IF EXISTS seg_app;
CREATE EXTENSION pg_segments;
CREATE ROLE seg_app;
CREATE SCHEMA tn;
GRANT USAGE ON SCHEMA tn TO seg_app;
\i tests/pg_regress/sql/exact_helper.psql
\set VERBOSITY terse

CREATE TABLE tn.contacts (id bigint PRIMARY KEY, account_id bigint NOT NULL, country text, score int);
CREATE TABLE tn.events (contact_id bigint, name text);
INSERT INTO tn.contacts SELECT i, 1 + i % 3, (ARRAY['DE', 'FR'])[1 + i % 2], i % 10 FROM generate_series(1, 30) i;
INSERT INTO tn.events SELECT 1 + i % 30, 'click' FROM generate_series(1, 12) i;
GRANT SELECT, INSERT, UPDATE, DELETE ON tn.contacts, tn.events TO seg_app;

-- Registration: the tenant column has a key's types; a table without tenants
-- refuses a tenant.
CREATE TABLE tn.other (id int PRIMARY KEY, region numeric);
SELECT segments.register_source('tn.other', tenant_column => 'region');
SELECT segments.register_source('tn.other', tenant_column => 'missing');
SELECT segments.register_source('tn.other');
SELECT segments.create_segment('Any other', 'id > 0', source => 'tn.other', tenant => '1');
SELECT segments.unregister_source('tn.other', true);
SELECT segments.register_source('tn.contacts', tenant_column => 'account_id');
SELECT segments.register_relation('events', 'tn.contacts', 'tn.events', 'contact_id');

-- A segment of a source with tenants needs one: the argument or the setting.
SET ROLE seg_app;
SELECT segments.create_segment('Germans', $$country = 'DE'$$);
SELECT segments.create_segment('Germans', $$country = 'DE'$$, tenant => 'one');
SELECT segments.create_segment('Germans', $$country = 'DE'$$, tenant => '001') IS NOT NULL AS created;
BEGIN;
SET LOCAL segments.tenant = '2';
SELECT segments.create_segment('Germans', $$country = 'DE'$$) IS NOT NULL AS created;
COMMIT;
-- Names are unique within a tenant, and IN SEGMENT stays inside it.
BEGIN;
SET LOCAL segments.tenant = '2';
SELECT segments.create_segment('germans', $$score > 1$$);
ROLLBACK;
BEGIN;
SET LOCAL segments.tenant = '2';
SELECT segments.create_segment('German clickers', $$IN SEGMENT 'Germans' AND ANY events$$) IS NOT NULL AS created;
SELECT name, tenant, member_count FROM segments.segment ORDER BY name;
COMMIT;
SELECT segments.create_segment('Clickers', $$ANY events$$, tenant => '3') IS NOT NULL AS created;
SELECT name, tenant, member_count FROM segments.segment ORDER BY tenant, name;

-- Without a tenant, a name two tenants use is ambiguous (42725); with one,
-- every function and view answers for that tenant only.
\set VERBOSITY default
SELECT segments.member_count('Germans');
\set VERBOSITY terse
BEGIN;
SET LOCAL segments.tenant = '1';
SELECT segments.member_count('Germans'), segments.is_member('Germans', 6::bigint), segments.is_member('Germans', 4::bigint);
SELECT array_agg(key::int ORDER BY key::int) FROM segments.members;
SELECT segments.segments_of(6::bigint), segments.segments_of(4::bigint);
SELECT segments.member_count('Clickers');
COMMIT;
BEGIN;
SET LOCAL segments.tenant = '2';
SELECT segments.member_count('Germans'), segments.is_member('Germans', 6::bigint), segments.is_member('Germans', 4::bigint);
SELECT segment_name, array_agg(key::int ORDER BY key::int) FROM segments.members GROUP BY 1 ORDER BY 1;
COMMIT;

-- Application users: a personal segment created while segments.app_user
-- is set is that user's; the same pooled role acting for another user, or
-- for none, does not see it or its members.
BEGIN;
SET LOCAL segments.tenant = '1';
SET LOCAL segments.app_user = 'alice';
SELECT segments.create_segment('My list', $$score > 5$$, shared => false) IS NOT NULL AS created;
SELECT segments.member_count('My list'), segments.is_member('My list', 18::bigint);
COMMIT;
BEGIN;
SET LOCAL segments.tenant = '1';
SET LOCAL segments.app_user = 'bob';
SELECT name FROM segments.segment ORDER BY name;
SELECT segments.segments_of(18::bigint);
SELECT segments.is_member('My list', 18::bigint);
ROLLBACK;
BEGIN;
SET LOCAL segments.tenant = '1';
SELECT count(*) AS seen FROM segments.members WHERE segment_name = 'My list';
ROLLBACK;
BEGIN;
SET LOCAL segments.tenant = '1';
SET LOCAL segments.app_user = 'alice';
SELECT name FROM segments.segment ORDER BY name;
SELECT segments.segments_of(18::bigint);
SELECT segments.drop_segment('My list');
COMMIT;

-- A contact moved to another tenant leaves the old tenant's segments and
-- enters the new one's; new contacts and events are maintained per tenant.
UPDATE tn.contacts SET account_id = 2 WHERE id IN (6, 12);
INSERT INTO tn.contacts VALUES (31, 3, 'DE', 5), (32, 2, 'DE', 5);
INSERT INTO tn.events VALUES (32, 'click'), (31, 'click');
DELETE FROM tn.events WHERE contact_id = 1;
RESET ROLE;
SELECT * FROM exact('tn.contacts');
SELECT d.name, d.tenant, array_agg(m.id ORDER BY m.id) AS members
  FROM segments.segment_def d LEFT JOIN segments.contacts_membership m ON m.segment_id = d.id
 GROUP BY d.id ORDER BY d.tenant, d.name;

-- One INSERT of contacts of many tenants (more than FEW_TENANTS in
-- src/maintain/trigger.rs): maintained tenant by tenant, by key.
INSERT INTO tn.contacts SELECT 100 + i, 1 + i % 20, (ARRAY['DE', 'FR'])[1 + i % 2], i % 10 FROM generate_series(1, 60) i;
SELECT * FROM exact('tn.contacts');

-- A source that is also its own lookup target (who referred the contact):
-- new contacts, and the contacts a changed referrer is read by, are
-- maintained in their tenants' segments.
ALTER TABLE tn.contacts ADD COLUMN referrer_id bigint;
SELECT segments.register_lookup('referrer', 'tn.contacts', 'referrer_id', 'tn.contacts');
SELECT segments.create_segment('Referred by a German', $$referrer.country = 'DE'$$, tenant => t) IS NOT NULL AS created
  FROM unnest(ARRAY['1', '2']) t;
INSERT INTO tn.contacts VALUES (33, 1, 'FR', 1, 18), (34, 2, 'FR', 1, 18), (36, 2, 'FR', 1, 24);
UPDATE tn.contacts SET country = 'DE' WHERE id = 33;
INSERT INTO tn.contacts VALUES (35, 1, 'FR', 1, 33);
UPDATE tn.contacts SET country = 'FR' WHERE id = 18;
SELECT * FROM exact('tn.contacts');
SELECT d.tenant, array_agg(m.id ORDER BY m.id) AS members
  FROM segments.segment_def d LEFT JOIN segments.contacts_membership m ON m.segment_id = d.id
 WHERE d.name = 'Referred by a German' GROUP BY d.tenant ORDER BY d.tenant;

-- A source none of whose segments another references: a write reads its
-- tenant's segments through the index on (source, tenant) alone. A static
-- segment holds its tenant's contacts only: a contact moved away leaves it,
-- and another tenant's contact is not added.
CREATE TABLE tn.leads (id int PRIMARY KEY, account int NOT NULL, score int);
INSERT INTO tn.leads SELECT i, 1 + i % 2, i FROM generate_series(1, 8) i;
SELECT segments.register_source('tn.leads', tenant_column => 'account');
SELECT segments.create_segment('High', 'score > 4', source => 'tn.leads', tenant => t) IS NOT NULL AS created
  FROM unnest(ARRAY['1', '2']) t;
SELECT segments.create_segment('High then', 'score > 4', kind => 'static', source => 'tn.leads', tenant => '2',
                               track_changes => true) IS NOT NULL AS created;
SELECT segments.add_members('High then', ARRAY[2, 3]);
SELECT segments.assign(4, ARRAY['High then']);
SELECT segments.assign(1, ARRAY['High then']);
SELECT segments.assign(ARRAY[1, 2, 3], ARRAY['High then']);
UPDATE tn.leads SET score = 10 WHERE id IN (1, 2);
UPDATE tn.leads SET score = 0 WHERE id = 6;
UPDATE tn.leads SET account = 1 WHERE id = 7;
SELECT * FROM exact('tn.leads');
SELECT d.name, d.tenant, array_agg(m.key::int ORDER BY m.key::int) AS members
  FROM segments.segment_def d LEFT JOIN segments.members m ON m.segment_id = d.id
 WHERE d.source = 'tn.leads'::regclass GROUP BY d.id ORDER BY d.tenant, d.name;
SELECT c.key, c.change FROM segments.changes c JOIN segments.segment_def d ON d.id = c.segment_id
 WHERE d.name = 'High then' ORDER BY c.id;
SELECT name, member_count FROM segments.segment WHERE source = 'tn.leads'::regclass ORDER BY tenant, name;
SELECT segments.unregister_source('tn.leads', true);
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'tn.leads'::regclass AND NOT tgisinternal;

-- The tenant column is part of the registration.
ALTER TABLE tn.contacts RENAME COLUMN account_id TO account;

RESET client_min_messages;
SELECT segments.unregister_source('tn.contacts', true);
DROP SCHEMA tn CASCADE;
DROP EXTENSION pg_segments;
DROP ROLE seg_app;
