\set k random(1, 700)
\set c random(1, 40)
\set v random(0, 9)
DELETE FROM r_events WHERE id = (SELECT min(id) FROM r_events WHERE contact_id = :k);
