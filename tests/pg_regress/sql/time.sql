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
