-- The language tools from SQL: parse, format, check, explain.
CREATE EXTENSION pg_segments;
\pset null '(null)'

\i tests/pg_regress/sql/helpers.psql

CREATE TABLE contacts (
  id bigint PRIMARY KEY, email text, country text, score int, is_vip boolean NOT NULL DEFAULT false,
  created_at timestamptz, props jsonb, tags text[]);
INSERT INTO contacts VALUES
  (1, 'ann@example.com', 'DE', 10, true, now() - interval '1 day', '{"plan":"trial"}', '{vip}'),
  (2, NULL, 'BR', 3, false, now() - interval '60 days', '{"plan":"free"}', '{}'),
  (3, 'back\slash 100%', NULL, NULL, false, NULL, NULL, NULL);

-- parse: the JSON tree with spans
SELECT jsonb_pretty(segments.parse('NOT is_vip'));
SELECT segments.parse('country IN (''DE'', ''AT'') AND score > 5') -> 'args' -> 1;

-- format: canonical text, a fixed point
SELECT segments.format(segments.parse(d)) AS canonical,
       segments.format(segments.parse(segments.format(segments.parse(d)))) = segments.format(segments.parse(d)) AS fixed_point
  FROM (VALUES ('country <> ''BR'''), ('created_at > -7d'), ('a = 1 or b = 2 and not (c = 3 or d = 4)'),
               ('"Weird ""Name""" IS NOT EMPTY'), ('COUNT events(name=''x'')>=3'),
               ('x = ''it''''s''  -- comment')) AS t(d);

-- format accepts trees from a UI builder (no spans) and validates them
SELECT segments.format('{"type":"and","args":[
  {"type":"in_segment","segment":"Newsletter"},
  {"type":"not","arg":{"type":"condition","operand":{"type":"field","path":[{"name":"props"},{"name":"plan"}]},
                       "test":{"op":"in","values":[{"type":"string","value":"trial"},{"type":"number","value":"2"}]}}}]}');
SELECT fails($$SELECT segments.format('{"type":"condition","operand":{"type":"field","path":[{"name":"x"}]},
  "test":{"op":"compare","cmp":"=","value":{"type":"number","value":"1; DROP TABLE contacts"}}}')$$);
SELECT segments.format('{"type":"condition","operand":{"type":"field","path":[{"name":"score"}]},
  "test":{"op":"between","low":{"type":"number","value":5000},"high":{"type":"number","value":-2.5}}}');
SELECT fails($$SELECT segments.format('{"type":"and"}')$$);
SELECT fails($$SELECT segments.format('[1, 2]')$$);

-- check: no rows when valid; every problem with line, column and hint otherwise
SELECT * FROM segments.check('country = ''DE'' AND score > 5', 'contacts');
SELECT * FROM segments.check('country = ''DE'' AND', 'contacts');
SELECT * FROM segments.check(E'contry = ''DE''\n  AND score CONTAINS ''x''\n  AND email = ''''', 'contacts');
SELECT * FROM segments.check('ANY events', 'contacts');
SELECT * FROM segments.check(E'email MATCHES ''^[a-z]+@''\n  OR email MATCHES ''(unclosed''', 'contacts');
SELECT * FROM segments.check('no_such_column = 1');  -- without a source: syntax only

-- explain: the compiled predicate, used as is in a WHERE clause
SELECT segments.explain('country != ''BR'' AND tags CONTAINS ''vip''', 'contacts');
SELECT id FROM contacts WHERE "contacts"."country" OPERATOR(pg_catalog.=) 'DE'::pg_catalog.text ORDER BY id;

-- errors carry a SQLSTATE and the position, and change nothing
SELECT fails($$SELECT segments.explain('country = ', 'contacts')$$);
SELECT fails($$SELECT segments.explain('contry = ''DE''', 'contacts')$$);
SELECT fails($$SELECT segments.explain('country > 5', 'contacts')$$);
SELECT fails($$SELECT segments.explain('IN SEGMENT ''Nope''', 'contacts')$$);
SELECT fails($$SELECT segments.explain('created_at > 2026-02-30', 'contacts')$$);
SELECT fails($$SELECT segments.explain(repeat('(', 100) || 'is_vip' || repeat(')', 100), 'contacts')$$);
SELECT fails($$SELECT segments.explain(repeat('(', 100000) || 'is_vip' || repeat(')', 100000), 'contacts')$$);
SELECT fails($$SELECT segments.explain('email MATCHES ''a{2,1}''', 'contacts')$$);
SELECT fails($$SELECT segments.explain('is_vip')$$);
SELECT fails($$SELECT segments.explain('is_vip', 'no_such_table')$$);
SELECT fails($$SELECT segments.parse('')$$);
SELECT count(*) AS contacts_untouched FROM contacts;

-- Runs the compiled predicate of a definition and returns the matching ids.
CREATE FUNCTION members(definition text) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE result bigint[];
BEGIN
  EXECUTE format('SELECT coalesce(array_agg(id ORDER BY id), ''{}'') FROM public.contacts WHERE %s',
                 segments.explain(definition, 'public.contacts')) INTO result;
  RETURN result;
END $$;

CREATE TEMP TABLE baseline AS
SELECT d, members(d) AS ids FROM (VALUES
  ('country = ''DE'''), ('country != ''DE'''), ('email CONTAINS ''\'''), ('email CONTAINS ''%'''),
  ('tags CONTAINS ''vip'''), ('created_at WITHIN LAST 7 days'), ('props.plan = ''trial'''),
  ('score IN (3, 10)'), ('NOT (score > 5)')) AS t(d);
SELECT * FROM baseline ORDER BY d;

-- Nothing planted on the search_path is ever called by compiled SQL.
CREATE SCHEMA evil;
CREATE FUNCTION evil.yes(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.yes);
CREATE OPERATOR evil.~~* (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.yes);
CREATE FUNCTION evil.yes_arr(text[], text[]) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.@> (LEFTARG = text[], RIGHTARG = text[], FUNCTION = evil.yes_arr);
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT '1970-01-01'::timestamptz$$;
SET search_path = evil, pg_catalog, public;
SELECT d, members(d) = ids AS unchanged FROM baseline ORDER BY d;
RESET search_path;

-- Literals mean the same with standard_conforming_strings off.
SET standard_conforming_strings = off;
SELECT d, members(d) = ids AS unchanged FROM baseline ORDER BY d;
RESET standard_conforming_strings;
