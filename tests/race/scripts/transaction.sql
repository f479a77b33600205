\set k random(1, 700)
\set c random(1, 40)
\set v random(0, 9)
BEGIN;
UPDATE r_companies SET country = (ARRAY['DE','FR','AT'])[1 + :v % 3] WHERE id = :c;
INSERT INTO r_contacts VALUES (:k, :c, :v, 'DE') ON CONFLICT (id) DO UPDATE SET score = EXCLUDED.score;
INSERT INTO r_events (contact_id, name) VALUES (:k + 1, 'click');
COMMIT;
