// Differential test of active-segment maintenance: random definitions over
// a registered CRM, random writes through every path (INSERT, UPDATE of
// attributes, keys, owners and lookups, DELETE, TRUNCATE, ON CONFLICT, MERGE,
// rolled-back subtransactions, an UPDATE failing halfway through its row
// triggers), and after every round each active segment
// must equal a from-scratch evaluation of its filter, with an exact count.
// SEGMENTS_SEED and SEGMENTS_ROUNDS change the seed and lengthen the run
// (they reach the server as segments.test_seed / segments.test_rounds).
// The same run with a tenant column: segments of three tenants, contacts
// moving between them.

use rng::Rng as Dice;

const CRM: &str = r#"
CREATE TABLE d_companies (id bigint PRIMARY KEY, country text, size int);
INSERT INTO d_companies SELECT i, (ARRAY['DE','BR','AT'])[1 + i % 3], CASE WHEN i % 4 = 0 THEN NULL ELSE i * 10 END
  FROM generate_series(1, 8) i;
CREATE TABLE d_contacts (id bigint PRIMARY KEY, country text, score int, vip boolean, created_at timestamptz,
                         props jsonb, tags text[], company_id bigint, note text, account int NOT NULL DEFAULT 1);
INSERT INTO d_contacts SELECT i, (ARRAY['DE','BR','AT',NULL,''])[1 + i % 5], i % 17, i % 3 = 0,
       now() - (i % 6) * interval '1 day', jsonb_build_object('plan', (ARRAY['pro','free'])[1 + i % 2], 'n', i % 7),
       CASE i % 4 WHEN 0 THEN '{vip}'::text[] WHEN 1 THEN '{}' ELSE NULL END, 1 + i % 9, 'x'
  FROM generate_series(1, 60) i;
UPDATE d_contacts SET account = 1 + id % 3;
CREATE TABLE d_events (id serial PRIMARY KEY, contact_id bigint, name text, at timestamptz);
INSERT INTO d_events (contact_id, name, at) SELECT 1 + i % 50, (ARRAY['open','click'])[1 + i % 2], now() - (i % 5) * interval '1 day'
  FROM generate_series(1, 150) i;
CREATE TABLE d_deals (id serial PRIMARY KEY, contact_id bigint, stage text, amount numeric);
INSERT INTO d_deals (contact_id, stage, amount) SELECT 1 + i % 40, (ARRAY['won','lost'])[1 + i % 2], (i * 37) % 500
  FROM generate_series(1, 60) i;
SELECT segments.register_source('d_contacts', tenant_column => CASE WHEN current_setting('segments.test_tenants', true) = 'on' THEN 'account' END);
SELECT segments.register_relation('events', 'd_contacts', 'd_events', 'contact_id');
SELECT segments.register_relation('deals', 'd_contacts', 'd_deals', 'contact_id');
SELECT segments.register_lookup('company', 'd_contacts', 'company_id', 'd_companies');
-- Fires after segments_maintain_update_row (triggers fire in name order).
CREATE FUNCTION d_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$;
CREATE TRIGGER zz_boom AFTER UPDATE ON d_contacts FOR EACH ROW WHEN (NEW.note = 'boom') EXECUTE FUNCTION d_boom();
"#;

fn atom(d: &mut Dice, earlier: usize) -> String {
    let n = d.below(20) as u64;
    let s = match d.below(24) {
        0 => format!("country = '{}'", d.pick(&["DE", "BR", "AT", ""])),
        1 => format!("country != '{}'", d.pick(&["DE", "BR"])),
        2 => "country IN ('DE', 'AT')".into(),
        3 => "country IS EMPTY".into(),
        4 => format!("score > {n}"),
        5 => format!("score BETWEEN {} AND {}", n / 2, n),
        6 => "vip".into(),
        7 => "created_at WITHIN LAST 3 days".into(),
        8 => "created_at OLDER THAN 2 days".into(),
        9 => format!("props.plan = '{}'", d.pick(&["pro", "free"])),
        10 => format!("props.n >= {}", n % 7),
        11 => "tags CONTAINS 'vip'".into(),
        12 => "tags IS EMPTY".into(),
        13 => format!("company.country = '{}'", d.pick(&["DE", "BR", "AT"])),
        14 => format!("company.size > {}", n * 4),
        15 => "company.size IS NULL".into(),
        16 => "ANY events".into(),
        17 if n % 2 == 0 => format!("NO events (name = '{}')", d.pick(&["open", "click"])),
        17 => format!("COUNT events (name = '{}') = 0", d.pick(&["open", "click"])),
        18 => format!("COUNT events (name = 'open') >= {}", 1 + n % 4),
        19 => "COUNT events (at WITHIN LAST 2 days) > 1".into(),
        20 => format!("SUM deals.amount > {}", n * 40),
        21 => format!("ANY deals (stage = 'won' AND amount > {})", n * 20),
        22 => format!("MAX deals.amount >= {}", n * 25),
        _ if earlier > 0 => format!("IN SEGMENT 'D{}'", d.below(earlier)),
        _ => "score IS NULL".into(),
    };
    if d.chance(15) {
        format!("NOT {s}")
    } else {
        s
    }
}

fn definition(d: &mut Dice, earlier: usize, depth: u32) -> String {
    if depth >= 2 || d.chance(40) {
        return atom(d, earlier);
    }
    let op = if d.chance(50) { "AND" } else { "OR" };
    let parts: Vec<String> = (0..2 + d.below(2)).map(|_| definition(d, earlier, depth + 1)).collect();
    let text = format!("({})", parts.join(&format!(" {op} ")));
    if d.chance(20) {
        format!("NOT {text}")
    } else {
        text
    }
}

/// One random write statement (with `tenants`, also contacts moving
/// between them).
fn write(d: &mut Dice, next_id: &mut i64, tenants: bool) -> String {
    let c = 1 + d.below(70) as u64;
    let c2 = 1 + d.below(70) as u64;
    if tenants && d.chance(15) {
        return format!("UPDATE d_contacts SET account = {} WHERE id IN ({c}, {c2})", 1 + d.below(3));
    }
    match d.below(19) {
        0 => {
            *next_id += 1;
            format!(
                "INSERT INTO d_contacts VALUES ({}, '{}', {}, {}, now() - interval '{} days', '{{\"plan\":\"pro\",\"n\":{}}}', '{{vip}}', {}, 'x')",
                next_id,
                d.pick(&["DE", "BR", "AT"]),
                d.below(17),
                d.chance(50),
                d.below(6),
                d.below(7),
                1 + d.below(9)
            )
        }
        1 => format!("UPDATE d_contacts SET country = {} WHERE id % 7 = {}", d.pick(&["'DE'", "'BR'", "NULL", "''"]), c % 7),
        2 => format!("UPDATE d_contacts SET score = score + {} WHERE id IN ({c}, {c2})", d.below(5)),
        3 => format!("UPDATE d_contacts SET vip = NOT vip, tags = {} WHERE id = {c}", d.pick(&["'{vip}'", "'{}'", "NULL"])),
        4 => format!("UPDATE d_contacts SET company_id = {} WHERE id = {c}", 1 + d.below(10)),
        5 => format!("UPDATE d_contacts SET note = 'y' WHERE id > {c}"),
        6 => format!("DELETE FROM d_contacts WHERE id = {c}"),
        7 => format!(
            "INSERT INTO d_events (contact_id, name, at) VALUES ({c}, '{}', now() - interval '{} days'), ({c2}, 'open', now())",
            d.pick(&["open", "click"]),
            d.below(5)
        ),
        8 => format!("DELETE FROM d_events WHERE contact_id = {c} AND name = '{}'", d.pick(&["open", "click"])),
        9 => format!("UPDATE d_events SET contact_id = {c2} WHERE contact_id = {c}"),
        10 => format!(
            "UPDATE d_companies SET country = '{}', size = {} WHERE id = {}",
            d.pick(&["DE", "BR", "AT"]),
            d.pick(&["NULL", "5", "500"]),
            1 + d.below(8)
        ),
        11 => format!("INSERT INTO d_deals (contact_id, stage, amount) VALUES ({c}, 'won', {})", d.below(600)),
        12 => format!("UPDATE d_deals SET contact_id = {c2}, stage = 'lost' WHERE contact_id = {c}"),
        13 => format!(
            "INSERT INTO d_contacts (id, country, score) VALUES ({c}, 'AT', 3), ({}, 'DE', 9)
             ON CONFLICT (id) DO UPDATE SET country = EXCLUDED.country, score = EXCLUDED.score",
            *next_id + 1000
        ),
        14 => format!(
            "MERGE INTO d_contacts t USING (VALUES ({c}, 'BR'), ({}, 'DE')) v(id, country) ON t.id = v.id
             WHEN MATCHED AND t.score > 8 THEN DELETE
             WHEN MATCHED THEN UPDATE SET country = v.country
             WHEN NOT MATCHED THEN INSERT (id, country, score) VALUES (v.id, v.country, 1)",
            *next_id + 2000 + d.below(50) as i64
        ),
        15 => {
            *next_id += 1;
            format!("UPDATE d_contacts SET id = {} WHERE id = {c}", *next_id + 5000)
        }
        // Fails after the row trigger saw the first row: what it collected
        // must vanish with the subtransaction.
        16 => format!(
            "DO $x$ BEGIN UPDATE d_contacts SET score = score + 3, note = CASE WHEN id = {c2} THEN 'boom' ELSE note END
                          WHERE id IN ({c}, {c2});
             EXCEPTION WHEN raise_exception THEN NULL; END $x$"
        ),
        // Rows that leave or enter the filters of the segments reading them.
        17 => format!(
            "UPDATE d_events SET name = CASE name WHEN 'open' THEN 'click' ELSE 'open' END, at = at - interval '1 day'
              WHERE contact_id = {c}"
        ),
        _ if d.chance(10) => "TRUNCATE d_events".into(),
        _ => format!("DELETE FROM d_deals WHERE contact_id = {c}"),
    }
}

/// Active segments whose membership or count differs from a fresh evaluation.
fn mismatches() -> Vec<String> {
    let rows: Vec<(i64, String, String, Option<String>)> = Spi::connect(|client| {
        client
            .select("SELECT id, name, definition, tenant FROM segments.segment WHERE kind = 'active' ORDER BY id", None, &[])
            .unwrap()
            .map(|r| (r.get(1).unwrap().unwrap(), r.get(2).unwrap().unwrap(), r.get(3).unwrap().unwrap(), r.get(4).unwrap()))
            .collect()
    });
    let mut bad = vec![];
    for (id, name, definition, tenant) in rows {
        // A tenant's segment, evaluated for its tenant.
        Spi::run_with_args("SELECT set_config('segments.tenant', $1, false)", &[tenant.unwrap_or_default().as_str().into()])
            .unwrap();
        let pred = Spi::get_one_with_args::<String>(
            "SELECT segments.explain($1, 'd_contacts')",
            &[definition.as_str().into()],
        )
        .unwrap()
        .unwrap();
        let (diff, count_ok) = Spi::get_two::<i64, bool>(&format!(
            "WITH fresh AS (SELECT id FROM d_contacts WHERE {pred}),
                  stored AS (SELECT id FROM segments.d_contacts_membership WHERE segment_id = {id})
             SELECT (SELECT count(*) FROM ((SELECT * FROM fresh EXCEPT SELECT * FROM stored)
                                     UNION ALL (SELECT * FROM stored EXCEPT SELECT * FROM fresh)) x),
                    (SELECT count(*) FROM stored) = segments.member_count({name})",
            name = codegen::literal(&name)
        ))
        .unwrap();
        if diff != Some(0) || count_ok != Some(true) {
            bad.push(format!("{name}: {definition} (differs by {diff:?}, count ok: {count_ok:?})"));
        }
    }
    Spi::run("SELECT set_config('segments.tenant', '', false)").unwrap();
    bad
}

#[pg_test]
fn active_segments_equal_a_fresh_evaluation_after_random_writes() {
    differential(false);
}

#[pg_test]
fn tenant_segments_equal_a_fresh_evaluation_after_random_writes() {
    differential(true);
}

/// With `tenants`: a tenant column, segments of three tenants (no IN
/// SEGMENT: a reference stays inside a tenant), contacts moving between them.
fn differential(tenants: bool) {
    Spi::run(&format!("SET segments.test_tenants = {}", if tenants { "on" } else { "off" })).unwrap();
    Spi::run(CRM).unwrap();
    let setting = |name: &str, default: u64| {
        Spi::get_one::<String>(&format!("SELECT current_setting('segments.test_{name}', true)"))
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (seed, rounds) = (setting("seed", 0xD1FF), setting("rounds", 150));
    let mut d = Dice(seed);
    for i in 0..24 {
        let def = definition(&mut d, if tenants { 0 } else { i }, 0);
        let kind = if i % 8 == 7 { "static" } else { "active" };
        let tenant = tenants.then(|| (1 + i % 3).to_string());
        Spi::run_with_args(
            "SELECT segments.create_segment($1, $2, $3, 'd_contacts', tenant => $4)",
            &[format!("D{i}").as_str().into(), def.as_str().into(), kind.into(), tenant.into()],
        )
        .unwrap_or_else(|e| panic!("{def}: {e}"));
    }
    assert_eq!(mismatches(), Vec::<String>::new(), "after creation");
    let mut next_id = 100;
    for round in 0..rounds {
        let statements: Vec<String> = (0..1 + d.below(4)).map(|_| write(&mut d, &mut next_id, tenants)).collect();
        if d.chance(20) {
            // A subtransaction that fails: its writes, and the maintenance
            // they caused, must vanish.
            let body = statements.iter().map(|s| format!("{s};")).collect::<Vec<_>>().join("\n");
            Spi::run(&format!(
                "DO $do$ BEGIN {body}
                   RAISE EXCEPTION 'roll back';
                 EXCEPTION WHEN raise_exception THEN NULL; END $do$"
            ))
            .unwrap();
        } else {
            for s in &statements {
                Spi::run(s).unwrap_or_else(|e| panic!("round {round}: {s}: {e}"));
            }
        }
        let bad = mismatches();
        assert!(bad.is_empty(), "round {round} after {statements:#?}:\n{}", bad.join("\n"));
    }
}
