-- The CRM the race test writes to from several clients at once: contacts
-- pointing at companies (a lookup), events (a relation, no foreign key),
-- and segments of every kind that reads them.
CREATE EXTENSION IF NOT EXISTS pg_segments;
CREATE TABLE r_companies (id bigint PRIMARY KEY, country text, size int);
INSERT INTO r_companies SELECT i, (ARRAY['DE','FR','AT'])[1 + i % 3], i * 10 FROM generate_series(1, 30) i;
CREATE TABLE r_contacts (id bigint PRIMARY KEY, company_id bigint, score int, country text);
INSERT INTO r_contacts SELECT i, 1 + i % 30, i % 10, (ARRAY['DE','FR'])[1 + i % 2] FROM generate_series(1, 300) i;
CREATE TABLE r_events (id bigserial PRIMARY KEY, contact_id bigint, name text);
INSERT INTO r_events (contact_id, name) SELECT 1 + i % 400, (ARRAY['open','click'])[1 + i % 2] FROM generate_series(1, 600) i;
CREATE INDEX ON r_events (contact_id);
SELECT segments.register_source('r_contacts');
SELECT segments.register_relation('events', 'r_contacts', 'r_events', 'contact_id');
SELECT segments.register_lookup('company', 'r_contacts', 'company_id', 'r_companies');
SELECT segments.create_segment('German company', $$company.country = 'DE'$$);
SELECT segments.create_segment('Big German', $$company.country = 'DE' AND company.size > 150$$);
SELECT segments.create_segment('Clicked', $$ANY events (name = 'click')$$);
SELECT segments.create_segment('Opened twice', $$COUNT events (name = 'open') >= 2$$);
SELECT segments.create_segment('Mixed', $$score > 5 AND (company.country = 'FR' OR ANY events (name = 'click'))$$);
SELECT segments.create_segment('Local', $$score > 4 AND country = 'DE'$$);
SELECT segments.create_segment('German, not clicked', $$IN SEGMENT 'German company' AND NOT IN SEGMENT 'Clicked'$$);
