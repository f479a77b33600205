-- Time-relative segments: exact after every write, and brought up to date by
-- refresh_due() as time passes (boundaries crossed for real, seconds apart).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_segments CASCADE;
CREATE EXTENSION pg_segments;
DROP SCHEMA IF EXISTS tm CASCADE;
CREATE SCHEMA tm;
SET search_path = tm, public;

CREATE TABLE tm.contacts (id int PRIMARY KEY, seen_at timestamptz);
CREATE INDEX ON tm.contacts (seen_at);
CREATE TABLE tm.events (contact_id int, at timestamptz);
CREATE INDEX ON tm.events (at);
SELECT segments.register_source('tm.contacts');
SELECT segments.register_relation('events', 'tm.contacts', 'tm.events', 'contact_id');
INSERT INTO tm.contacts VALUES (1, now()), (2, now() - interval '10 minutes'), (3, NULL);
INSERT INTO tm.events VALUES (1, now()), (2, now() - interval '1 hour');

SELECT segments.create_segment('Recent', 'seen_at WITHIN LAST 2 seconds') > 0 AS created;
SELECT segments.create_segment('Stale', 'seen_at OLDER THAN 2 seconds OR seen_at IS NULL', track_changes => true) > 0 AS created;
SELECT segments.create_segment('Fresh events', 'COUNT events (at WITHIN LAST 2 seconds) >= 1') > 0 AS created;
SELECT segments.create_segment('Recent with events', $$IN SEGMENT 'Recent' AND IN SEGMENT 'Fresh events'$$) > 0 AS created;
SELECT segments.create_segment('Not about time', 'id > 1') > 0 AS created;

CREATE VIEW tm.state AS
SELECT s.name, s.member_count, array_agg(m.id ORDER BY m.id) FILTER (WHERE m.id IS NOT NULL) AS members
  FROM segments.segment s LEFT JOIN segments.contacts_membership m ON m.segment_id = s.id
 GROUP BY s.id, s.name, s.member_count ORDER BY s.id;
SELECT * FROM tm.state;
SELECT segments.refresh_due() AS nothing_crossed_yet;

SELECT pg_sleep(2.5);
-- time passed: contact 1 crossed the 2-second boundaries; nothing changes
-- until a sweep (or a write to contact 1)
SELECT * FROM tm.state;
SELECT segments.refresh_due() AS memberships_changed;
SELECT * FROM tm.state;
SELECT segments.refresh_due() AS nothing_crossed_since;
SELECT key, change FROM segments.changes ORDER BY id;

-- a write makes the contact exact at once, whatever time it is
UPDATE tm.contacts SET seen_at = now() WHERE id = 2;
INSERT INTO tm.events VALUES (2, now());
SELECT * FROM tm.state;
SELECT key, change FROM segments.changes ORDER BY id;

DROP VIEW tm.state;
SELECT segments.unregister_source('tm.contacts', true);
DROP SCHEMA tm CASCADE;

-- Days begin at midnight UTC whoever writes: a contact written from a
-- session in UTC+14 or UTC-12 is judged against the same day as one written
-- from UTC (dates, timestamps without zone, today/yesterday, date literals
-- against timestamptz). Rows on either side of UTC midnight and of the
-- writers' own midnights: at any hour, one of the two zones disagrees with
-- UTC about them.
\i tests/pg_regress/sql/exact_helper.psql
CREATE SCHEMA tz;
CREATE TABLE tz.contacts (id int PRIMARY KEY, seen timestamptz, wall timestamp, signed date, at timestamptz);
SELECT segments.register_source('tz.contacts');
SELECT segments.create_segment('Seen today', 'seen AFTER today') IS NOT NULL AS created;
SELECT segments.create_segment('Wall today', 'wall AFTER today') IS NOT NULL AS created;
SELECT segments.create_segment('Signed today', 'signed = today') IS NOT NULL AS created;
SELECT segments.create_segment('Seen before the day', $$at BEFORE 2026-12-07$$) IS NOT NULL AS created;
CREATE VIEW tz.utc AS SELECT pg_catalog.date_trunc('day', now(), 'UTC') AS midnight,
                             (now() AT TIME ZONE 'UTC')::date AS today;
CREATE VIEW tz.state AS
  SELECT s.name, array_agg(m.id ORDER BY m.id) FILTER (WHERE m.id IS NOT NULL) AS members
    FROM segments.segment s LEFT JOIN segments.contacts_membership m ON m.segment_id = s.id
   WHERE s.source = 'tz.contacts'::regclass GROUP BY s.name ORDER BY s.name;
\set rows 'INSERT INTO tz.contacts SELECT 1, midnight + interval \'1 minute\', (midnight + interval \'1 minute\') AT TIME ZONE \'UTC\', today, NULL::timestamptz FROM tz.utc UNION ALL SELECT 2, midnight - interval \'1 minute\', (midnight - interval \'1 minute\') AT TIME ZONE \'UTC\', today - 1, NULL FROM tz.utc UNION ALL SELECT 3, midnight + interval \'1 day 1 minute\', NULL, today + 1, NULL FROM tz.utc UNION ALL VALUES (4, NULL::timestamptz, NULL::timestamp, NULL::date, \'2026-12-06 23:59+00\'::timestamptz), (5, NULL, NULL, NULL, \'2026-12-07 00:01+00\')'
SET TimeZone = 'Pacific/Kiritimati';
:rows;
SELECT * FROM tz.state;
TRUNCATE tz.contacts;
SET TimeZone = 'Etc/GMT+12';
:rows;
SELECT * FROM tz.state;
RESET TimeZone;
SELECT * FROM exact('tz.contacts');
DROP VIEW tz.state, tz.utc;
SELECT segments.unregister_source('tz.contacts', true);
DROP SCHEMA tz CASCADE;

-- A row that passed a relation's time filter when the membership was last
-- decided, aged out of it since, and is deleted or changed before a sweep
-- removed its contact (no sweeper works on this database): the write is
-- what the contact's membership still rests on, so it is recomputed; no
-- later sweep would find the contact, whose row is gone or no longer passes.
CREATE SCHEMA aged;
CREATE TABLE aged.contacts (id int PRIMARY KEY);
CREATE TABLE aged.events (id int PRIMARY KEY, contact_id int, name text, at timestamptz);
INSERT INTO aged.contacts VALUES (1), (2);
INSERT INTO aged.events VALUES (1, 1, 'open', now()), (2, 2, 'open', now());
SELECT segments.register_source('aged.contacts');
SELECT segments.register_relation('events', 'aged.contacts', 'aged.events', 'contact_id');
SELECT segments.create_segment('Opened lately', $$ANY events (name = 'open' AND at WITHIN LAST 1 seconds)$$) IS NOT NULL AS created;
SELECT segments.create_segment('Not opened lately', $$NO events (NOT name != 'open' AND NOT at OLDER THAN 1 seconds)$$) IS NOT NULL AS created;
SELECT s.name, m.id FROM segments.contacts_membership m JOIN segments.segment s ON s.id = m.segment_id ORDER BY 1, 2;
SELECT pg_sleep(1.2);
DELETE FROM aged.events WHERE id = 1;
UPDATE aged.events SET name = 'click' WHERE id = 2;
SELECT * FROM exact('aged.contacts');
SELECT segments.unregister_source('aged.contacts', true);
DROP SCHEMA aged CASCADE;
