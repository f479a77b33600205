\set k random(1, 700)
\set c random(1, 40)
\set v random(0, 9)
UPDATE r_contacts SET score = :v WHERE id = :k;
