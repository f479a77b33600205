-- What must survive a dump and restore.
SELECT name, kind, source, definition, description, owner, shared, member_count FROM segments.segment ORDER BY id;
SELECT relid, key_column, key_type, membership FROM segments.source;
SELECT source, name, relation, contact_column FROM segments.relation;
SELECT source, name, via_column, target, target_key FROM segments.lookup;
SELECT segment_name, pg_catalog.string_agg(key, ',' ORDER BY key::int) FROM segments.members GROUP BY 1 ORDER BY 1;
SELECT d.name, p.name AS depends_on FROM segments.dependency x
  JOIN segments.segment_def d ON d.id = x.segment_id JOIN segments.segment_def p ON p.id = x.depends_on;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'crm.contacts'::regclass ORDER BY 1;
