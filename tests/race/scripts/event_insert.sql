\set k random(1, 700)
\set c random(1, 40)
\set v random(0, 9)
INSERT INTO r_events (contact_id, name) VALUES (:k, (ARRAY['open','click'])[1 + :v % 2]);
