\set k random(1, 700)
\set c random(1, 40)
\set v random(0, 9)
DELETE FROM r_contacts WHERE id = :k AND id > 300;
