\set k random(1, 700)
\set c random(1, 40)
\set v random(0, 9)
INSERT INTO r_companies VALUES (:c, (ARRAY['DE','FR','AT'])[1 + :v % 3], :v * 40) ON CONFLICT (id) DO NOTHING;
