\set k random(1, 700)
\set c random(1, 40)
\set v random(0, 9)
INSERT INTO r_contacts VALUES (:k, :c, :v, 'DE') ON CONFLICT (id) DO NOTHING;
