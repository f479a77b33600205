// In-database tests: compiled predicates run against real tables and are
// compared with hand-written SQL, on data chosen to trip NULL handling,
// escaping and jsonb typing.

use pgrx::prelude::*;

use crate::state::registry;
use segments_lang::model::{Catalog, Lookup, Relation};
use segments_lang::{codegen, parser, typecheck};

mod rng {
    include!("../lang/tests/support/rng.rs");
}

const SAMPLE: &str = r#"
CREATE TYPE lifecycle AS ENUM ('lead', 'trial', 'customer');
CREATE TABLE companies (id bigint PRIMARY KEY, name text, country text, employees int);
INSERT INTO companies VALUES (1, 'ACME', 'DE', 50), (2, 'Globex', 'BR', NULL);
CREATE TABLE contacts (
  id bigint PRIMARY KEY, email text, country varchar(8), language text, score int, balance numeric,
  is_vip boolean, created_at timestamptz, birthday date, props jsonb, tags text[], company_id bigint,
  lifecycle lifecycle, external_id uuid, "First Name" text);
INSERT INTO contacts VALUES
 (1, 'a@x.com', 'DE', 'de', 10, 100.5, true, now() - interval '1 day', '1990-01-01',
  '{"plan":"trial","n":5,"flag":true,"tags":["a","vip"],"address":{"city":"Berlin"}}', '{vip,new}', 1,
  'customer', '6f1c2b9e-1d2a-4c3b-9a8e-7f6d5c4b3a21', 'Ann'),
 (2, NULL, 'BR', '', 5, NULL, false, now() - interval '40 days', NULL, '{"plan":"free","n":"5"}', '{}', 2,
  'lead', NULL, 'O''Brien'),
 (3, '50%_off@x.com', NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 'it''s@x.com', 'de', 'DE', -3, -2.5, true, now() + interval '1 day', '2000-02-29', '[]', '{VIP}', 1,
  'trial', NULL, ''),
 (5, E'back\\slash@x.com', 'AT', 'de', 100, 1000000, false, '2026-01-01T00:00:00Z', current_date - 3,
  '{"plan":null,"n":5.0,"flag":"true"}', '{vip}', 3, NULL, NULL, NULL),
 (6, '', 'CH', 'fr', 7, 7, NULL, now() - interval '10 minutes', current_date, '{}', NULL, NULL, NULL, NULL, NULL),
 (7, 'UPPER@X.COM', 'BR', 'pt', 5, 5, true, now() - interval '8 days', NULL, '{"tags":"vip list","plan":"Trial"}',
  '{a,b,c}', 2, 'customer', NULL, 'Zoë');
CREATE TABLE events (id serial, contact_id bigint, name text, at timestamptz);
INSERT INTO events (contact_id, name, at) VALUES
 (1, 'email_opened', now() - interval '1 day'), (1, 'email_opened', now() - interval '2 days'),
 (1, 'email_opened', now() - interval '40 days'), (1, 'email_clicked', now() - interval '1 day'),
 (2, 'email_opened', now() - interval '1 day'), (2, 'email_opened', now() - interval '3 days'),
 (2, 'email_opened', now() - interval '4 days'), (4, NULL, NULL), (6, 'email_opened', now());
CREATE TABLE deals (id serial, contact_id bigint, stage text, amount numeric, closed_at timestamptz);
INSERT INTO deals (contact_id, stage, amount, closed_at) VALUES
 (1, 'won', 6000, now() - interval '2 months'), (1, 'won', 5000, now() - interval '1 month'),
 (2, 'lost', 9000, now() - interval '1 month'), (4, 'won', NULL, NULL), (7, 'won', 20000, now() - interval '2 years');
"#;

fn oid(table: &str) -> pg_sys::Oid {
    Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{table}'::regclass::oid")).unwrap().unwrap()
}

/// The sample's catalog with its relations and lookup, built from pg_catalog.
fn sample_catalog() -> Catalog {
    let mut cat = registry::for_table(oid("contacts"));
    for name in ["events", "deals"] {
        cat.relations.push(Relation { name: name.into(), table: registry::table(oid(name)), contact_column: "contact_id".into() });
    }
    cat.lookups.push(Lookup {
        name: "company".into(),
        via_column: "company_id".into(),
        target: registry::table(oid("companies")),
        target_key: "id".into(),
    });
    cat
}

fn compile(cat: &Catalog, definition: &str) -> String {
    let expr = parser::parse(definition).unwrap_or_else(|p| panic!("{definition}: {:?}", p.locate(definition)));
    let checked = typecheck::check(&expr, cat).unwrap_or_else(|p| panic!("{definition}: {p:?}"));
    codegen::predicate(&checked.pred, "\"c\"", &cat.key)
}

fn ids(where_clause: &str) -> Vec<i64> {
    Spi::get_one::<Vec<i64>>(&format!(
        "SELECT COALESCE(array_agg(id ORDER BY id), '{{}}') FROM contacts AS c WHERE {where_clause}"
    ))
    .unwrap_or_else(|e| panic!("{where_clause}: {e}"))
    .unwrap()
}

/// `definition` selects what `hand_written` selects, and `NOT definition`
/// selects exactly the rest.
fn same(cat: &Catalog, definition: &str, hand_written: &str) {
    let got = ids(&compile(cat, definition));
    assert_eq!(got, ids(hand_written), "{definition}");
    let negated = ids(&compile(cat, &format!("NOT ({definition})")));
    let all = ids("true");
    let mut union: Vec<i64> = got.iter().chain(negated.iter()).copied().collect();
    union.sort();
    assert_eq!(union, all, "members(c) and members(NOT c) must partition the table: {definition}");
}

#[pg_test]
fn predicates_match_hand_written_sql() {
    Spi::run(SAMPLE).unwrap();
    let cat = sample_catalog();
    let cases: &[(&str, &str)] = &[
        ("country = 'DE'", "country = 'DE'"),
        ("country != 'BR'", "country IS DISTINCT FROM 'BR'"),
        ("country <> 'BR'", "country IS DISTINCT FROM 'BR'"),
        ("country IN ('DE', 'AT')", "country IN ('DE', 'AT')"),
        ("country NOT IN ('DE', 'BR')", "country IS NULL OR country NOT IN ('DE', 'BR')"),
        ("score > 5", "score > 5"),
        ("score >= -3 AND score < 10", "score >= -3 AND score < 10"),
        ("score BETWEEN 0 AND 10", "score BETWEEN 0 AND 10"),
        ("score NOT BETWEEN 0 AND 10", "score IS NULL OR score NOT BETWEEN 0 AND 10"),
        ("balance <= -2.5 OR balance > 999999.5", "balance <= -2.5 OR balance > 999999.5"),
        ("score IN (5, 7.0)", "score IN (5, 7)"),
        ("score IS NULL", "score IS NULL"),
        ("email IS EMPTY", "email IS NULL OR email = ''"),
        ("language IS NOT EMPTY", "language <> ''"),
        ("tags IS EMPTY", "tags IS NULL OR cardinality(tags) = 0"),
        ("props IS EMPTY", "props IS NULL OR props IN ('[]', '{}', '\"\"', 'null')"),
        ("birthday IS EMPTY", "birthday IS NULL"),
        ("is_vip", "is_vip IS TRUE"),
        ("NOT is_vip", "is_vip IS NOT TRUE"),
        ("is_vip = false", "is_vip = false"),
        ("email CONTAINS '%'", "strpos(email, '%') > 0"),
        ("email CONTAINS '_off'", "strpos(email, '_off') > 0"),
        ("email CONTAINS 'X.COM'", "strpos(lower(email), 'x.com') > 0"),
        ("email CONTAINS 'back\\slash'", "strpos(email, E'back\\\\slash') > 0"),
        ("email CONTAINS 'it''s'", "strpos(email, 'it''s') > 0"),
        ("email STARTS WITH 'IT'''", "lower(email) LIKE 'it''%'"),
        ("email ENDS WITH '.COM'", "lower(email) LIKE '%.com'"),
        ("email NOT ENDS WITH '.com'", "email IS NULL OR lower(email) NOT LIKE '%.com'"),
        ("email LIKE '%@x.com'", "email LIKE '%@x.com'"),
        ("email ILIKE '%@X.COM'", "email ILIKE '%@x.com'"),
        ("email MATCHES '^[a-z]+@'", "email ~ '^[a-z]+@'"),
        ("\"First Name\" = 'O''Brien'", "\"First Name\" = 'O''Brien'"),
        ("\"First Name\" CONTAINS 'ZOË'", "lower(\"First Name\") LIKE '%zoë%'"),
        ("tags CONTAINS 'vip'", "'vip' = ANY(tags)"),
        ("tags NOT CONTAINS 'vip'", "tags IS NULL OR NOT ('vip' = ANY(tags))"),
        ("tags CONTAINS ANY ('new', 'c')", "tags && '{new,c}'"),
        ("tags CONTAINS ALL ('a', 'b')", "tags @> '{a,b}'"),
        ("lifecycle = 'customer'", "lifecycle = 'customer'"),
        ("lifecycle IN ('lead', 'trial')", "lifecycle IN ('lead', 'trial')"),
        ("lifecycle CONTAINS 'TOM'", "lifecycle::text LIKE '%tom%'"),
        ("external_id = '6f1c2b9e-1d2a-4c3b-9a8e-7f6d5c4b3a21'", "external_id IS NOT NULL"),
        ("props.plan = 'trial'", "props->>'plan' = 'trial' AND jsonb_typeof(props->'plan') = 'string'"),
        ("props.plan IN ('trial', 'free')", "props->>'plan' IN ('trial', 'free') AND jsonb_typeof(props->'plan') = 'string'"),
        ("props.n = 5", "jsonb_typeof(props->'n') = 'number'"),
        ("props.n = '5'", "props->'n' = '\"5\"'"),
        ("props.n > 4", "jsonb_typeof(props->'n') = 'number' AND (props->>'n')::numeric > 4"),
        ("props.flag", "props->'flag' = 'true'"),
        ("props.flag = true", "props->'flag' = 'true'"),
        ("props.plan IS NULL", "props->'plan' IS NULL OR props->'plan' = 'null'"),
        ("props.address.city = 'Berlin'", "props#>>'{address,city}' = 'Berlin'"),
        ("props.tags CONTAINS 'vip'", "props->'tags' ? 'vip' OR (jsonb_typeof(props->'tags') = 'string' AND props->>'tags' ILIKE '%vip%')"),
        ("props.tags CONTAINS ALL ('a', 'vip')", "props->'tags' @> '[\"a\",\"vip\"]'"),
        ("props.plan STARTS WITH 'tr'", "jsonb_typeof(props->'plan') = 'string' AND props->>'plan' ILIKE 'tr%'"),
        ("created_at WITHIN LAST 7 days", "created_at BETWEEN now() - interval '7 days' AND now()"),
        ("created_at WITHIN NEXT 2 days", "created_at BETWEEN now() AND now() + interval '2 days'"),
        ("created_at OLDER THAN 30 days", "created_at < now() - interval '30 days'"),
        ("created_at AFTER 2026-01-01T00:00:00Z", "created_at > '2026-01-01T00:00:00Z'"),
        ("created_at BEFORE -7d", "created_at < now() - interval '7 days'"),
        ("created_at > 2 weeks ago", "created_at > now() - interval '2 weeks'"),
        ("created_at < in 1 hour", "created_at < now() + interval '1 hour'"),
        ("created_at >= today", "created_at >= date_trunc('day', now())"),
        ("birthday WITHIN LAST 7 days", "birthday BETWEEN current_date - 7 AND current_date"),
        ("birthday = today", "birthday = current_date"),
        ("birthday < yesterday", "birthday < current_date - 1"),
        ("birthday BEFORE 2000-01-01", "birthday < '2000-01-01'"),
        ("company.country = 'DE'", "EXISTS (SELECT 1 FROM companies co WHERE co.id = c.company_id AND co.country = 'DE')"),
        ("company.employees > 10", "EXISTS (SELECT 1 FROM companies co WHERE co.id = c.company_id AND co.employees > 10)"),
        ("company.employees IS NULL", "NOT EXISTS (SELECT 1 FROM companies co WHERE co.id = c.company_id AND co.employees IS NOT NULL)"),
        ("ANY events", "EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id)"),
        ("NO events", "NOT EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id)"),
        (
            "ANY events (name = 'email_clicked' AND at WITHIN LAST 30 days)",
            "EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id AND e.name = 'email_clicked' AND e.at >= now() - interval '30 days')",
        ),
        (
            "COUNT events (name = 'email_opened' AND at WITHIN LAST 30 days) >= 2",
            "(SELECT count(*) FROM events e WHERE e.contact_id = c.id AND e.name = 'email_opened' AND e.at BETWEEN now() - interval '30 days' AND now()) >= 2",
        ),
        ("COUNT events = 0", "NOT EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id)"),
        ("COUNT events (name != 'email_opened') >= 1", "EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id AND e.name IS DISTINCT FROM 'email_opened')"),
        ("SUM deals.amount (stage = 'won') >= 10000", "(SELECT sum(amount) FROM deals d WHERE d.contact_id = c.id AND d.stage = 'won') >= 10000"),
        ("SUM deals.amount > 0", "(SELECT sum(amount) FROM deals d WHERE d.contact_id = c.id) > 0"),
        ("AVG deals.amount < 6000", "(SELECT avg(amount) FROM deals d WHERE d.contact_id = c.id) < 6000"),
        ("MAX events.at WITHIN LAST 36 hours", "(SELECT max(at) FROM events e WHERE e.contact_id = c.id) >= now() - interval '36 hours'"),
        ("MIN deals.stage = 'lost'", "(SELECT min(stage) FROM deals d WHERE d.contact_id = c.id) = 'lost'"),
        (
            "ANY deals (stage = 'won' AND amount > 5000 AND closed_at WITHIN LAST 12 months)",
            "EXISTS (SELECT 1 FROM deals d WHERE d.contact_id = c.id AND stage = 'won' AND amount > 5000 AND closed_at >= now() - interval '12 months')",
        ),
        (
            "(company.country IN ('DE','AT','CH') OR language = 'de') AND NOT is_vip",
            "(EXISTS (SELECT 1 FROM companies co WHERE co.id = c.company_id AND co.country IN ('DE','AT','CH')) OR language = 'de') AND is_vip IS NOT TRUE",
        ),
        ("country = 'DE' OR language = 'de' AND score > 50", "country = 'DE' OR (language = 'de' AND score > 50)"),
        ("NOT (country = 'DE' OR score > 5)", "NOT (coalesce(country = 'DE', false) OR coalesce(score > 5, false))"),
    ];
    for (definition, hand) in cases {
        same(&cat, definition, hand);
    }
}

#[pg_test]
fn explain_compiles_against_the_real_table() {
    Spi::run(SAMPLE).unwrap();
    let sql = Spi::get_one::<String>("SELECT segments.explain('country != ''BR'' AND tags CONTAINS ''vip''', 'contacts')")
        .unwrap()
        .unwrap();
    let n = Spi::get_one::<i64>(&format!("SELECT count(*) FROM contacts WHERE {sql}")).unwrap().unwrap();
    assert_eq!(n, 2); // contacts 1 and 5: contact 4 has 'VIP', contact 7 is in BR
}

#[pg_test]
fn check_reports_every_problem_with_positions() {
    Spi::run(SAMPLE).unwrap();
    let rows = Spi::get_one::<String>(
        "SELECT string_agg(format('%s %s:%s %s (%s)', severity, line, col, message, hint), E'\\n' ORDER BY line, col)
           FROM segments.check(E'contry = ''DE''\\n  AND score CONTAINS ''x''\\n  AND email LIKE ''plain''', 'contacts')",
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        rows,
        "error 1:1 column \"contry\" does not exist in source public.contacts (did you mean \"country\"?)\n\
         error 2:7 CONTAINS needs text; this operand is an integer ()"
    );
    let ok = Spi::get_one::<i64>("SELECT count(*) FROM segments.check('country = ''DE''', 'contacts')").unwrap().unwrap();
    assert_eq!(ok, 0);
    let warn = Spi::get_one::<String>("SELECT severity FROM segments.check('email LIKE ''plain''', 'contacts')")
        .unwrap()
        .unwrap();
    assert_eq!(warn, "warning");
}

#[pg_test]
fn parse_and_format_round_trip_in_sql() {
    let text = Spi::get_one::<String>("SELECT segments.format(segments.parse('country in (''DE'',''AT'') and not is_vip'))")
        .unwrap()
        .unwrap();
    assert_eq!(text, "country IN ('DE', 'AT') AND NOT is_vip");
    let from_builder = Spi::get_one::<String>(
        r#"SELECT segments.format('{"type":"or","args":[
             {"type":"condition","operand":{"type":"field","path":[{"name":"Country"}]},
              "test":{"op":"compare","cmp":"=","value":{"type":"string","value":"it''s"}}},
             {"type":"exists","negated":true,"relation":{"name":"events"}}]}')"#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(from_builder, "\"Country\" = 'it''s' OR NO events");
}

#[pg_test(error = "not a segment syntax tree: unknown variant `xor`, expected one of `and`, `or`, `not`, `condition`, `exists`, `in_segment` at line 1 column 26")]
fn format_rejects_what_is_not_a_tree() {
    Spi::run("SELECT segments.format('{\"type\":\"xor\",\"args\":[]}')").unwrap();
}

#[pg_test(error = "empty quoted identifier at line 1, column 5")]
fn format_rejects_trees_whose_text_would_not_parse() {
    Spi::run(r#"SELECT segments.format('{"type":"exists","relation":{"name":""}}')"#).unwrap();
}

/// The row filters of the UPDATE trigger evaluate most predicates natively
/// (see `rowfilter`); on rows chosen to trip NULLs, integer widths,
/// compressed and out-of-line text, NULL and empty arrays and collations,
/// every predicate must give what PostgreSQL gives for the same row.
#[pg_test]
fn row_filters_agree_with_sql() {
    Spi::run(
        "CREATE TABLE rf (id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, t text, v varchar(10), b bool, n numeric, e text);
         ALTER TABLE rf ALTER e SET STORAGE EXTERNAL;
         INSERT INTO rf VALUES
          (1, 3, 7, 4, 'DE', 'DE', true, 3, 'a'),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          (3, -1, 11, 5, 'AT', 'AT', false, 2.5, repeat('y', 5000)),
          (4, 0, 12, 9223372036854775807, repeat('x', 10000), 'x', NULL, -1, repeat('y', 4999)),
          (5, 32767, 5, -9223372036854775808, 'de', 'de', true, 100, ''),
          (6, 3, 2147483647, 1, '', '', false, NULL, repeat('z', 3000)),
          (7, -32768, -2147483648, 2, 'x', 'DE ', true, 0, 'a'),
          (8, 3, 8, 4, 'DE', 'DE', true, 3, 'a'),
          (9, 3, 11, 4, 'DE', 'DE', true, 3, 'a'),
          (10, 3, 7, 4, 'AT', 'DE', true, 3, 'a'),
          (11, 3, 7, 4, 'DE', 'DE', false, 3, 'a'),
          (12, 3, 7, 5, 'DE', 'DE', true, 2.5, 'a'),
          (13, 2, 7, 4, 'DE', 'DE', true, 3, repeat('y', 5000))",
    )
    .unwrap();
    // (predicate, evaluated natively)
    let cases: &[(&str, bool)] = &[
        ("s.i4 OPERATOR(pg_catalog.>=) 7 AND s.i4 OPERATOR(pg_catalog.<=) 11", true),
        ("s.i2 = 3", true),
        ("s.i2 > -32768", true),
        ("s.i8 < 5", true),
        ("s.i8 >= 9223372036854775807", true),
        ("s.i4 <> 5", true),
        ("s.i4 = ANY (ARRAY[1, NULL, 7])", true),
        ("s.i8 <> ALL (ARRAY[4, 5]::int8[])", true),
        ("s.i4 = ANY ('{}'::int4[])", true),
        ("s.i4 <> ALL ('{}'::int4[])", true),
        ("s.t = ANY (ARRAY['DE'::pg_catalog.text, 'AT'::pg_catalog.text]::pg_catalog.text[])", true),
        ("s.t <> ALL (ARRAY['DE', NULL]::text[])", true),
        ("s.t = ANY ('{}'::text[])", true),
        ("s.v = 'DE'", true),
        ("s.v = ANY (ARRAY['DE', 'x'])", true),
        ("s.t = repeat('x', 10000)", true),
        ("s.t = ANY (ARRAY['DE', repeat('x', 10000)])", true),
        ("s.e = repeat('y', 5000)", true),
        ("s.e <> repeat('y', 5000)", true),
        ("s.t COLLATE \"C\" = 'de'", true),
        ("NOT COALESCE(s.t = 'x', false)", true),
        ("s.b", true),
        ("NOT s.b", true),
        ("s.t IS NULL OR s.i8 IS NOT NULL", true),
        ("(s.i4 > 3 OR s.i2 = 3) AND NOT (s.b AND s.i8 = 2)", true),
        ("s.n > 2.5", false),
        ("s.t LIKE 'D%'", false),
        ("s.t < 'M'", false),
        ("s.i8 = ANY (ARRAY[1, 2]::numeric[])", false),
        ("(s.i4 > 3 OR s.t LIKE 'a%') AND s.b", false),
        ("s.e LIKE 'y%' OR s.i4 = 7", false),
    ];
    let predicates: Vec<String> = cases.iter().map(|(p, _)| p.to_string()).collect();
    let expected: Vec<(i32, Vec<bool>)> = Spi::connect(|client| {
        let hits: Vec<String> = predicates.iter().map(|p| format!("COALESCE({p}, false)")).collect();
        client
            .select(&format!("SELECT id, ARRAY[{}] FROM rf AS s ORDER BY id", hits.join(", ")), None, &[])
            .unwrap()
            .map(|r| (r.get::<i32>(1).unwrap().unwrap(), r.get::<Vec<bool>>(2).unwrap().unwrap()))
            .collect()
    });
    let mut got: Vec<(i32, Vec<bool>)> = vec![];
    crate::pg::rowfilter::with_table_rows(oid("rf"), |row_type, rows| {
        let filters = crate::pg::rowfilter::RowFilters::new("public.rf", row_type, &predicates);
        let native = cases.iter().filter(|(_, n)| *n).count();
        assert_eq!(filters.native(), native, "predicates evaluated natively");
        let id = |row: &crate::pg::trigger::Row<'_>| row.text(1).unwrap().parse::<i32>().unwrap();
        for row in rows {
            got.push((id(row), filters.matches(*row)));
        }
        // What an UPDATE from one row to another flips: exactly the
        // predicates whose values differ (rows 8–13 differ from row 1 in
        // one or two columns, so most predicates are ruled out unevaluated).
        for old in rows {
            for new in rows {
                let (before, after) = (filters.matches(*old), filters.matches(*new));
                let want: Vec<(usize, bool)> =
                    (0..cases.len()).filter(|&i| before[i] != after[i]).map(|i| (i, after[i])).collect();
                assert_eq!(filters.flips(*old, *new), want, "rows {} → {}", id(old), id(new));
            }
            // A row that does not change leaves every predicate unevaluated,
            // those PostgreSQL evaluates too.
            assert_eq!(filters.candidates(*old, *old), Vec::<usize>::new(), "row {} unchanged", id(old));
        }
        // Rows 1 and 8 differ in i4 only (7 and 8): of the predicates
        // PostgreSQL evaluates in part, only the one whose i4 test changes
        // value is evaluated; the others read columns that stay.
        let (one, eight) = (&rows[0], &rows[7]);
        assert_eq!((id(one), id(eight)), (1, 8));
        let evaluated: Vec<&str> = filters.candidates(*one, *eight).into_iter().filter(|&i| !cases[i].1).map(|i| cases[i].0).collect();
        assert_eq!(evaluated, ["s.e LIKE 'y%' OR s.i4 = 7"]);
    });
    got.sort();
    assert_eq!(got.len(), expected.len());
    for ((id, want), (_, have)) in expected.iter().zip(&got) {
        for (i, (w, h)) in want.iter().zip(have).enumerate() {
            assert_eq!(w, h, "row {id}, predicate {}", cases[i].0);
        }
    }
}

/// The language's error kinds reach clients with the SQLSTATEs its one
/// table gives (`ErrorKind::sqlstate`), packed as PostgreSQL packs them.
#[pg_test]
fn error_kinds_raise_their_sqlstates() {
    use pgrx::PgSqlErrorCode as C;
    use segments_lang::error::ErrorKind as K;
    let expected = [
        (K::Syntax, C::ERRCODE_SYNTAX_ERROR),
        (K::UnknownColumn, C::ERRCODE_UNDEFINED_COLUMN),
        (K::UnknownObject, C::ERRCODE_UNDEFINED_OBJECT),
        (K::TypeMismatch, C::ERRCODE_DATATYPE_MISMATCH),
        (K::InvalidValue, C::ERRCODE_INVALID_PARAMETER_VALUE),
        (K::Limit, C::ERRCODE_STATEMENT_TOO_COMPLEX),
        (K::Cycle, C::ERRCODE_INVALID_OBJECT_DEFINITION),
    ];
    for (kind, code) in expected {
        assert_eq!(crate::pg::error::sqlstate_code(kind.sqlstate()), code, "{kind:?}");
    }
}

#[pg_test]
fn notification_payloads_stay_under_the_limit_and_keep_every_entry() {
    use crate::maintain::notify::{payloads, PAYLOAD_MAX};
    let head = "{\"source\":\"public.c\",\"segments\":[";
    let summary: Vec<String> = (0..300).map(|i| format!("{{\"id\":{i},\"name\":\"{}\"}}", "x".repeat(60))).collect();
    let parts = payloads(head, &summary);
    assert!(parts.len() > 1);
    let mut ids = vec![];
    for p in &parts {
        assert!(p.len() <= PAYLOAD_MAX, "{}", p.len());
        let v: serde_json::Value = serde_json::from_str(p).unwrap();
        ids.extend(v["segments"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()));
    }
    assert_eq!(ids, (0..300).collect::<Vec<i64>>());
    assert!(payloads(head, &[]).is_empty());
}

include!("differential.rs");
