-- A database with every kind of pg_segments state, to be dumped and restored.
CREATE EXTENSION pg_segments;
CREATE SCHEMA crm;
CREATE TABLE crm.companies (id bigint PRIMARY KEY, country text);
INSERT INTO crm.companies VALUES (1, 'DE'), (2, 'BR');
CREATE TABLE crm.contacts (id bigint PRIMARY KEY, country text, score int, company_id bigint);
INSERT INTO crm.contacts SELECT i, (ARRAY['DE', 'BR', NULL])[1 + i % 3], i, 1 + i % 2 FROM generate_series(1, 50) AS i;
CREATE TABLE crm.events (contact_id bigint, name text);
INSERT INTO crm.events SELECT 1 + i % 7, 'open' FROM generate_series(1, 30) AS i;
SELECT segments.register_source('crm.contacts');
SELECT segments.register_relation('events', 'crm.contacts', 'crm.events', 'contact_id');
SELECT segments.register_lookup('company', 'crm.contacts', 'company_id', 'crm.companies');
SELECT segments.create_segment('Germans', $$country = 'DE'$$);
SELECT segments.create_segment('Engaged DE', $$IN SEGMENT 'Germans' AND COUNT events >= 4 AND company.country = 'DE'$$);
SELECT segments.create_segment('Import', NULL, 'static', description => 'CSV import');
SELECT segments.add_members('Import', ARRAY[3, 5, 8]);
SELECT segments.create_segment('Private', 'score > 40', shared => false);
