-- make demo: a sample CRM with 100,000 contacts, registered with pg_segments,
-- segmented with the help pages' default segments and richer ones.
\set QUIET on
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
DROP DATABASE IF EXISTS demo WITH (FORCE);  -- the sweeper may be connected
CREATE DATABASE demo;
\c demo
SET client_min_messages = warning;
CREATE EXTENSION pg_segments;

\echo '==> generating a sample CRM (deterministic seed): 5,000 companies, 100,000 contacts, tags, events, deals'
\o /dev/null
SELECT setseed(0.42);
\o
CREATE TABLE companies (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  country text,
  industry text,
  employees int
);
INSERT INTO companies
SELECT i, 'Company ' || i,
       (ARRAY['DE','AT','CH','BR','US','FR','PT','JP'])[1 + (random() * 7)::int],
       (ARRAY['SaaS','Retail','Finance','Health','Education'])[1 + (random() * 4)::int],
       (random() * 2000)::int
  FROM generate_series(1, 5000) AS i;

CREATE TABLE contacts (
  id bigint PRIMARY KEY,
  email text,
  first_name text,
  country text,
  language text,
  score int,
  is_vip boolean NOT NULL DEFAULT false,
  company_id bigint REFERENCES companies,
  created_at timestamptz NOT NULL,
  last_inbound_at timestamptz,
  props jsonb
);
INSERT INTO contacts
SELECT i,
       CASE WHEN random() < 0.95 THEN 'user' || i || '@example.com' END,
       (ARRAY['Ann','Bruno','Chen','Dana','Emil','Fatima','Gus','Hana'])[1 + (random() * 7)::int],
       CASE WHEN random() < 0.85 THEN (ARRAY['DE','AT','CH','BR','US','FR','PT','JP'])[1 + (random() * 7)::int] END,
       CASE WHEN random() < 0.7 THEN (ARRAY['de','en','pt','fr',''])[1 + (random() * 4)::int] END,
       (random() * 100)::int,
       random() < 0.05,
       CASE WHEN random() < 0.9 THEN 1 + (random() * 4999)::int END,
       now() - random() * interval '730 days',
       CASE WHEN random() < 0.8 THEN now() - random() * interval '90 days' END,
       jsonb_build_object('plan', (ARRAY['trial','free','pro','enterprise'])[1 + (random() * 3)::int],
                          'seats', (random() * 50)::int)
  FROM generate_series(1, 100000) AS i;

CREATE TABLE contact_tags (contact_id bigint NOT NULL REFERENCES contacts, tag text NOT NULL);
INSERT INTO contact_tags
SELECT c, (ARRAY['vip','newsletter','beta','partner','churn-risk'])[1 + (random() * 4)::int]
  FROM (SELECT 1 + (random() * 99999)::int AS c FROM generate_series(1, 60000)) AS t;
CREATE INDEX ON contact_tags (contact_id);

CREATE TABLE events (
  id bigserial PRIMARY KEY,
  contact_id bigint NOT NULL REFERENCES contacts,
  name text NOT NULL,
  at timestamptz NOT NULL
);
INSERT INTO events (contact_id, name, at)
SELECT 1 + (random() * 99999)::int,
       (ARRAY['email_opened','email_opened','email_opened','email_clicked','page_view','form_submitted'])[1 + (random() * 5)::int],
       now() - random() * interval '120 days'
  FROM generate_series(1, 400000);
CREATE INDEX ON events (contact_id);

CREATE TABLE deals (
  id bigserial PRIMARY KEY,
  contact_id bigint NOT NULL REFERENCES contacts,
  stage text NOT NULL,
  amount numeric NOT NULL,
  closed_at timestamptz
);
INSERT INTO deals (contact_id, stage, amount, closed_at)
SELECT 1 + (random() * 99999)::int,
       (ARRAY['won','lost','open'])[1 + (random() * 2)::int],
       round((random() * 20000)::numeric, 2),
       now() - random() * interval '500 days'
  FROM generate_series(1, 30000);
CREATE INDEX ON deals (contact_id);
ANALYZE;

\echo
\echo '==> registering the CRM: contacts as the source, tags/events/deals as relations, company as a lookup'
\o /dev/null
SELECT segments.register_source('contacts');
SELECT segments.register_relation('tags', 'contacts', 'contact_tags', 'contact_id');
SELECT segments.register_relation('events', 'contacts', 'events', 'contact_id');
SELECT segments.register_relation('deals', 'contacts', 'deals', 'contact_id');
SELECT segments.register_lookup('company', 'contacts', 'company_id', 'companies');
\o

-- Creates a segment and records how long it took.
CREATE TEMP TABLE timing (name text PRIMARY KEY, ms numeric);
CREATE FUNCTION pg_temp.create(name text, definition text, kind text DEFAULT 'active',
                               shared boolean DEFAULT true, description text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM segments.create_segment(name, definition, kind, description => description, shared => shared);
  INSERT INTO timing VALUES (name, round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1));
END $$;

\echo '==> creating segments: the help pages'' defaults, then richer ones'
\o /dev/null
SELECT pg_temp.create('Created in the last 7 days', 'created_at WITHIN LAST 7 days');
SELECT pg_temp.create('Inactive for 30 days', 'last_inbound_at OLDER THAN 30 days OR last_inbound_at IS NULL');
SELECT pg_temp.create('With tags', 'ANY tags');
SELECT pg_temp.create('Country known', 'country IS NOT NULL');
SELECT pg_temp.create('Language known', 'language IS NOT EMPTY');

SELECT pg_temp.create('Engaged readers', $$COUNT events (name = 'email_opened' AND at WITHIN LAST 30 days) >= 3
  AND NO events (name = 'email_clicked' AND at WITHIN LAST 30 days)$$);
SELECT pg_temp.create('DACH big spenders', $$(company.country IN ('DE','AT','CH') OR language = 'de')
  AND ANY deals (stage = 'won' AND amount > 5000 AND closed_at WITHIN LAST 12 months)$$);
SELECT pg_temp.create('Won 10k+ or VIP tag', $$SUM deals.amount (stage = 'won') >= 10000 OR ANY tags (tag = 'vip')$$);
SELECT pg_temp.create('SaaS trials', $$company.industry = 'SaaS' AND props.plan IN ('trial','free') AND NOT is_vip$$);
SELECT pg_temp.create('Engaged, not yet customers', $$IN SEGMENT 'Engaged readers' AND NOT IN SEGMENT 'Won 10k+ or VIP tag'$$);
SELECT pg_temp.create('My follow-ups', $$IN SEGMENT 'Engaged readers' AND score > 80$$, shared => false,
                      description => 'personal: visible to its owner and admins only');

SELECT pg_temp.create('Webinar 2026-11', NULL, 'static');
-- A CSV file of (contact, segment) rows, as \copy would load it, assigned
-- in one call; create_missing creates the lists the file names.
CREATE TEMP TABLE csv_import (contact_id bigint, segment text);
INSERT INTO csv_import
SELECT i, s FROM generate_series(1, 2000) AS i,
       unnest(CASE WHEN i % 3 = 0 THEN ARRAY['Webinar 2026-11', 'Trade fair leads'] ELSE ARRAY['Webinar 2026-11'] END) AS s;
SELECT segments.assign_rows('TABLE csv_import', create_missing => true);
-- a second import moves contacts 1-500 to the trade fair list only
SELECT segments.assign(ARRAY(SELECT generate_series(1, 500)), ARRAY['Trade fair leads'], replace => true);
SELECT pg_temp.create('High scorers (snapshot)', 'score >= 95', 'static');
\o
\echo '    static lists: a CSV file of (contact, segment) rows, 2,000 contacts into Webinar 2026-11 and'
\echo '    every third into Trade fair leads (created by the import), in one assign_rows call; then'
\echo '    assign(keys, …, replace => true) moves contacts 1-500 to Trade fair leads only'

\echo
\echo '==> segments (member counts come from the catalog, not from scanning the memberships)'
SELECT s.id, s.name, s.kind, CASE WHEN s.shared THEN 'shared' ELSE 'personal' END AS visibility,
       s.member_count, t.ms AS create_ms
  FROM segments.segment s LEFT JOIN timing t ON t.name = s.name
 ORDER BY s.id;

\echo '==> reading'
SELECT segments.is_member('Engaged readers', 42::bigint) AS "is 42 an engaged reader?";
SELECT * FROM segments.segments_of(3::bigint) AS "segments of contact 3";
SELECT * FROM segments.dependents('Engaged readers') AS "segments using 'Engaged readers'";
SELECT c.id, c.email, c.country, m.entered_at
  FROM contacts c JOIN segments.contacts_membership m ON m.id = c.id
 WHERE m.segment_id = (SELECT id FROM segments.segment WHERE name = 'DACH big spenders')
 ORDER BY c.id LIMIT 5;

\echo '==> a role that is not the owner sees shared segments only'
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'demo_viewer') AS create_viewer \gset
\if :create_viewer
CREATE ROLE demo_viewer;
\endif
GRANT SELECT ON contacts TO demo_viewer;
SET ROLE demo_viewer;
SELECT count(*) AS "segments demo_viewer sees", bool_or(name = 'My follow-ups') AS "sees 'My follow-ups'?"
  FROM segments.segment;
RESET ROLE;

\echo '==> deleting a contact removes it from every segment, in the same statement'
SELECT count(*) AS "memberships of contact 3 before" FROM segments.members WHERE key = '3';
DELETE FROM contact_tags WHERE contact_id = 3;
DELETE FROM events WHERE contact_id = 3;
DELETE FROM deals WHERE contact_id = 3;
DELETE FROM contacts WHERE id = 3;
SELECT count(*) AS "memberships of contact 3 after" FROM segments.members WHERE key = '3';

\echo '==> active segments follow every write, in the same transaction'
SELECT segments.is_member('Engaged readers', 7::bigint) AS "contact 7 engaged before",
       segments.member_count('Engaged readers') AS "members before";
DELETE FROM events WHERE contact_id = 7 AND name = 'email_clicked';
INSERT INTO events (contact_id, name, at) SELECT 7, 'email_opened', now() - i * interval '1 day' FROM generate_series(1, 3) i;
SELECT segments.is_member('Engaged readers', 7::bigint) AS "contact 7 engaged after 3 opens",
       segments.member_count('Engaged readers') AS "members after",
       segments.is_member('Engaged, not yet customers', 7::bigint) AS "and so in 'Engaged, not yet customers'";
SELECT country, segments.is_member('Country known', 7::bigint) AS "contact 7 in 'Country known'" FROM contacts WHERE id = 7;
BEGIN;
UPDATE contacts SET country = NULL WHERE id = 7;
SELECT segments.is_member('Country known', 7::bigint) AS "inside a transaction that cleared its country";
ROLLBACK;
SELECT segments.is_member('Country known', 7::bigint) AS "after ROLLBACK";
\echo '==> refresh_due(): time-relative segments as time passes (cost follows the contacts that crossed)'
SELECT segments.refresh_due() AS "memberships changed since creation";
\echo '    (the background worker of this cluster runs it every 60 s: see segments.sweep_interval)'
