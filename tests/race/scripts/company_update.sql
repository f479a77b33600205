\set k random(1, 700)
\set c random(1, 40)
\set v random(0, 9)
UPDATE r_companies SET country = (ARRAY['DE','FR','AT'])[1 + :v % 3], size = :v * 40 WHERE id = :c;
