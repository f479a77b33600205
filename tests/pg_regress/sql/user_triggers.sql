-- Users' own triggers around registered tables (SPEC §6) never leave a
-- membership wrong: a BEFORE trigger that rewrites a read column, an AFTER
-- trigger on a relation that updates the contact, an AFTER trigger on the
-- source that updates the contact again, and one that writes a relation.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_segments CASCADE;
CREATE EXTENSION pg_segments;
DROP SCHEMA IF EXISTS ut CASCADE;
CREATE SCHEMA ut;
SET search_path = ut, public;

\i tests/pg_regress/sql/exact_helper.psql

CREATE TABLE ut.contacts (id int PRIMARY KEY, score int NOT NULL DEFAULT 0, events int NOT NULL DEFAULT 0,
                          tier text, note text);
CREATE TABLE ut.events (id serial PRIMARY KEY, contact_id int, name text);
INSERT INTO ut.contacts (id, score) SELECT i, i FROM generate_series(1, 8) i;
SELECT segments.register_source('ut.contacts');
SELECT segments.register_relation('events', 'ut.contacts', 'ut.events', 'contact_id');
SELECT segments.create_segment('Scored', 'score >= 10') IS NOT NULL AS created;
SELECT segments.create_segment('Busy', 'events >= 2') IS NOT NULL AS created;
SELECT segments.create_segment('Gold', $$tier = 'gold'$$) IS NOT NULL AS created;
SELECT segments.create_segment('Clicked', $$ANY events (name = 'click')$$) IS NOT NULL AS created;
SELECT segments.create_segment('Busy clickers', $$IN SEGMENT 'Busy' AND IN SEGMENT 'Clicked'$$) IS NOT NULL AS created;

-- BEFORE UPDATE: an UPDATE of note rewrites score (a column it does not name).
CREATE FUNCTION ut.bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.score := NEW.score + 10; RETURN NEW; END $$;
CREATE TRIGGER bump BEFORE UPDATE ON ut.contacts FOR EACH ROW WHEN (NEW.note = 'bump') EXECUTE FUNCTION ut.bump();
UPDATE ut.contacts SET note = 'bump' WHERE id IN (1, 2);
SELECT * FROM exact('ut.contacts');

-- AFTER INSERT on the relation updates the contact (a counter the
-- segments read), inside the relation's statement.
CREATE FUNCTION ut.count_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE ut.contacts SET events = events + 1 WHERE id = NEW.contact_id; RETURN NULL; END $$;
CREATE TRIGGER count_event AFTER INSERT ON ut.events FOR EACH ROW EXECUTE FUNCTION ut.count_event();
INSERT INTO ut.events (contact_id, name) VALUES (3, 'click'), (3, 'open'), (4, 'open'), (5, 'click');
INSERT INTO ut.events (contact_id, name) SELECT 4, 'click' FROM generate_series(1, 2);
SELECT * FROM exact('ut.contacts');

-- AFTER UPDATE on the source updates the contact again (tier from score),
-- a nested UPDATE of the same table inside its own statement.
CREATE FUNCTION ut.tier() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE ut.contacts SET tier = CASE WHEN NEW.score >= 15 THEN 'gold' ELSE 'plain' END
   WHERE id = NEW.id AND tier IS DISTINCT FROM CASE WHEN NEW.score >= 15 THEN 'gold' ELSE 'plain' END;
  RETURN NULL;
END $$;
CREATE TRIGGER tier AFTER UPDATE OF score ON ut.contacts FOR EACH ROW EXECUTE FUNCTION ut.tier();
UPDATE ut.contacts SET score = score + 7 WHERE id <= 6;
SELECT * FROM exact('ut.contacts');
UPDATE ut.contacts SET score = score - 20 WHERE id IN (1, 2);
SELECT * FROM exact('ut.contacts');

-- AFTER UPDATE on the source writes the relation (a "click" for gold
-- contacts), which the segments of the same statement read.
CREATE FUNCTION ut.gold_click() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO ut.events (contact_id, name) VALUES (NEW.id, 'click'); RETURN NULL; END $$;
CREATE TRIGGER gold_click AFTER UPDATE OF tier ON ut.contacts FOR EACH ROW WHEN (NEW.tier = 'gold')
  EXECUTE FUNCTION ut.gold_click();
UPDATE ut.contacts SET score = 30 WHERE id IN (7, 8);
SELECT * FROM exact('ut.contacts');
SELECT s.name, array_agg(m.key::int ORDER BY m.key::int) AS members
  FROM segments.segment s LEFT JOIN segments.members m ON m.segment_id = s.id
 GROUP BY s.name ORDER BY s.name;

-- Membership and count tables are written partly without the executor:
-- a trigger there would miss changes, so none can be created (0A000).
CREATE FUNCTION ut.entered() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER entered AFTER INSERT ON segments.contacts_membership FOR EACH ROW EXECUTE FUNCTION ut.entered();
CREATE TRIGGER counted AFTER INSERT ON segments.count_delta FOR EACH STATEMENT EXECUTE FUNCTION ut.entered();
SELECT count(*) FROM pg_trigger WHERE tgname IN ('entered', 'counted');

SELECT segments.unregister_source('ut.contacts', true);
DROP SCHEMA ut CASCADE;
DROP EXTENSION pg_segments;
