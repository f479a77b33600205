//! Keeping active segments exact, in the writing transaction.
//!
//! Every registered table (source, relation, lookup target) gets statement
//! triggers with transition tables. For each statement the trigger finds the
//! contacts it touched, locks their source rows (so writers on the same
//! contact serialize and writers on different contacts never wait), and
//! recomputes only those contacts for only the active segments that read the
//! table, plus the segments that reference them, in dependency order.
//! Four shortcuts: segments that read only the contact's row are decided by
//! the UPDATE row trigger in process (`rowfilter`), rows inserted into the
//! source are recomputed straight from the transition table (`Rows::New`),
//! rows of a relation recompute only the segments whose filters they pass
//! (`relevant`, and `Feed::relevance` in the UPDATE row trigger), and rows
//! inserted into a relation decide its `ANY` and `NO` segments on their own
//! (`Feed::decided`, `maintain_relation`).

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::api::{compile_checked, fail, fail_hint};
use crate::catalog::{self, Registered};
use crate::direct::Flip;
use crate::codegen::{ident, literal};
use crate::privilege::{as_owner, pinned_search_path};
use crate::rowfilter::RowFilters;
use crate::spi::{result_column, run_kept, run_latest, text_array};

/// An active segment to recompute, with what the recompute needs.
pub struct Target {
    id: i64,
    /// Dependency level: a segment comes after those it references.
    depth: i32,
    name: String,
    definition: String,
    track_changes: bool,
    shared: bool,
}

/// What maintenance needs of a stored definition.
#[derive(Clone)]
struct Compiled {
    /// WHERE predicate over the source row `"s"`.
    predicate: String,
    /// Contacts that time may have moved across a boundary since the last
    /// sweep (None: the segment does not depend on time).
    sweep: Option<String>,
    /// Reads nothing but the contact's own row (the clock allowed): no
    /// subquery, so it can share one pass over the rows (see `recompute`).
    flat: bool,
    /// The checked definition, for what else is derived from it
    /// (`codegen::relevance`).
    pred: crate::typecheck::Pred,
}

impl Compiled {
    /// Reads nothing but the contact's own row, and not the clock: its
    /// answer for a row image is final (see `rowfilter`).
    fn local(&self) -> bool {
        self.flat && self.sweep.is_none()
    }
}

thread_local! {
    /// Compiled definitions by segment id and definition text: recompiling on
    /// every statement would cost more than the recompute of one contact.
    static COMPILED: RefCell<HashMap<(i64, String), Compiled>> = RefCell::new(HashMap::new());
}

fn compiled(id: i64, definition: &str, reg: &Registered) -> Compiled {
    let cache_key = (id, definition.to_string());
    if let Some(c) = COMPILED.with(|c| c.borrow().get(&cache_key).cloned()) {
        return c;
    }
    let cat = catalog::for_source(reg);
    let (_, checked) = compile_checked(definition, &cat);
    let since = format!(
        "COALESCE((SELECT d.swept_at FROM segments.segment_def d WHERE d.id OPERATOR(pg_catalog.=) {id}), pg_catalog.now())"
    );
    let sweep = crate::codegen::sweep_candidates(&checked.pred, &cat.source, &reg.key, &since);
    let c = Compiled {
        predicate: crate::codegen::predicate(&checked.pred, "\"s\"", &reg.key),
        flat: checked.pred.row_local(),
        sweep,
        pred: checked.pred,
    };
    COMPILED.with(|m| m.borrow_mut().insert(cache_key, c.clone()));
    c
}

/// The WHERE predicate of a stored definition over the source row `"s"`.
pub fn predicate(id: i64, definition: &str, reg: &Registered) -> String {
    compiled(id, definition, reg).predicate
}

impl Job {
    fn of(t: &Target, reg: &Registered) -> Job {
        let c = compiled(t.id, &t.definition, reg);
        Job { id: t.id, predicate: c.predicate, track: t.track_changes, flat: c.flat }
    }
}

/// Membership changes of one segment in a recompute.
#[derive(Default, Clone, Copy)]
pub struct Delta {
    pub entered: i64,
    pub left: i64,
}

/// A segment to bring up to date.
pub struct Job {
    pub id: i64,
    pub predicate: String,
    pub track: bool,
    /// The predicate has no subquery (`Compiled::flat`).
    pub flat: bool,
}

/// The contacts a recompute covers.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    /// Every contact of the source.
    All,
    /// The contacts with these keys (text, cast to the key type).
    Keys(&'a [String]),
    /// The rows an INSERT into the source just added, read from the
    /// statement's transition table `new_rows`: no contact to look up (nobody
    /// else sees the rows yet) and no membership to take away (they have none).
    New(*mut pg_sys::TriggerData),
}

/// Up to this many contacts, a recompute by contact locks them and reads
/// and writes its flips without starting a statement, which costs more than
/// the work for a few (an event insert for one contact: 0.29x -> 0.35x
/// plain, then 0.30x -> 0.34x with the lock). Many go through the
/// set-based statements, which look each member up once, not twice, and
/// lock the contacts in one index scan: flip by flip measured no faster
/// with 1,000 and 10,000 contacts crossing a time boundary (medians of
/// three runs 15.9 against 13.3 ms and 106 against 81 ms, inside this
/// machine's spread: 60-116 ms for the statements in three more runs).
/// Where the two cross is not measured.
const FEW_CONTACTS: usize = 64;

/// Brings the `jobs` to exactly what their predicates select, for `rows`:
/// the jobs must not reference one another (one dependency level).
/// `entered_at` is kept for the contacts that stay. Up to `FEW_CONTACTS`
/// contacts, one `SELECT` lists the flips and `write_flips` writes them;
/// otherwise one statement writes the members, the counts and, for tracked
/// segments, the change log. Runs as the owner.
pub fn recompute(jobs: &[Job], reg: &Registered, rows: Rows) -> HashMap<i64, Delta> {
    let key = ident(&reg.key);
    let membership = reg.membership();
    // ` AND <alias>.key = ANY ($1)` when the recompute is for given contacts.
    let in_keys = |alias: &str| match rows {
        Rows::Keys(_) => format!(" AND {alias}.{key} OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::{}[])", reg.key_type),
        _ => String::new(),
    };
    let (from, types, args) = match rows {
        Rows::Keys(k) => (reg.source.as_str(), vec![pg_sys::TEXTARRAYOID], vec![text_array(k)]),
        Rows::All => (reg.source.as_str(), vec![], vec![]),
        Rows::New(_) => ("new_rows", vec![], vec![]),
    };
    // Predicates without subqueries share one pass over the rows, which
    // lists for each row the segments it belongs to (half the time of a
    // scan per segment, with 100 segments). The others keep a scan each,
    // where the planner can turn their subqueries into joins.
    let shared_pass = jobs.iter().filter(|j| j.flat).count() > 1;
    let (flat, nested): (Vec<&Job>, Vec<&Job>) = jobs.iter().partition(|j| j.flat && shared_pass);
    let mut branches: Vec<String> = nested
        .iter()
        .map(|j| {
            format!(
                "SELECT {}::pg_catalog.int8 AS segment_id, s.{key} AS k FROM {from} AS \"s\" WHERE ({}){}",
                j.id,
                j.predicate,
                in_keys("s")
            )
        })
        .collect();
    if !flat.is_empty() {
        let cases: Vec<String> =
            flat.iter().map(|j| format!("CASE WHEN ({}) THEN {}::pg_catalog.int8 END", j.predicate, j.id)).collect();
        branches.push(format!(
            "SELECT x.segment_id, x.k FROM (
                 SELECT pg_catalog.unnest(pg_catalog.array_remove(ARRAY[{}], NULL)) AS segment_id, s.{key} AS k
                   FROM {from} AS \"s\" WHERE true{}) x",
            cases.join(", "),
            in_keys("s")
        ));
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.id.to_string()).collect();
    let tracked: Vec<i64> = jobs.iter().filter(|j| j.track).map(|j| j.id).collect();
    let want = branches.join(" UNION ALL ");
    if matches!(rows, Rows::Keys(k) if k.len() <= FEW_CONTACTS) {
        let sql = flipped_members(&want, &membership, &key, &ids, &in_keys("m"));
        let flips: Vec<Flip> = Spi::connect_mut(|_| {
            run_kept(&sql, &types, &args);
            let (segments, keys, enters) = (result_column::<i64>(1), result_column::<String>(2), result_column::<bool>(3));
            segments
                .into_iter()
                .zip(keys.into_iter().zip(enters))
                .filter_map(|(segment, (key, enter))| Some(Flip { segment: segment?, key: key?, enter: enter?, generation: None }))
                .collect()
        });
        return write_flips(reg, &flips.iter().collect::<Vec<_>>(), &tracked);
    }
    let sql = match rows {
        Rows::New(_) => new_members(&want, &membership, &key, &tracked),
        _ => changed_members(&want, &membership, &key, &ids, &in_keys("m"), &tracked),
    };
    Spi::connect_mut(|_| {
        if let Rows::New(trigdata) = rows {
            // SAFETY: registers this trigger's transition tables with this
            // SPI connection, the one the statement runs in.
            unsafe { pg_sys::SPI_register_trigger_data(trigdata) };
        }
        run_kept(&sql, &types, &args);
        deltas()
    })
}

/// The statement that adds the rows of `want` (segment_id, k), new
/// contacts, to `membership`. They have no memberships yet, to take away or
/// to keep: a plain INSERT (ON CONFLICT would cost 70% more), and every row
/// of `want` in a live segment is a member entered. The lock on the segments
/// gained counts their members in the same pass over `want`, so nothing is
/// read back from the INSERT (200 ms less of a 1,000,000-row load with 10
/// segments than counting its RETURNING rows).
fn new_members(want: &str, membership: &str, key: &str, tracked: &[i64]) -> String {
    let log = match any_of(tracked) {
        None => String::new(),
        Some(t) => format!(
            ", logged AS (INSERT INTO segments.changes (segment_id, key, change)
                 SELECT w.segment_id, w.k::pg_catalog.text, 'enter' FROM want w
                  WHERE w.segment_id OPERATOR(pg_catalog.=) {t} AND w.segment_id OPERATOR(pg_catalog.=) {LIVE})"
        ),
    };
    format!(
        "WITH want AS MATERIALIZED ({want}),
              live AS (SELECT d.id, c.entered FROM segments.segment_def d
                         JOIN (SELECT w.segment_id, pg_catalog.count(*) AS entered FROM want w GROUP BY w.segment_id) c
                           ON d.id OPERATOR(pg_catalog.=) c.segment_id
                          FOR KEY SHARE OF d),
              added AS (INSERT INTO {membership} (segment_id, {key}) SELECT w.segment_id, w.k FROM want w
                         WHERE w.segment_id OPERATOR(pg_catalog.=) {LIVE}),
              counted AS (INSERT INTO segments.count_delta (segment_id, delta) SELECT live.id, live.entered FROM live){log}
         SELECT live.id, live.entered, 0::pg_catalog.int8 FROM live"
    )
}

/// The statement that brings `membership` to `want` (segment_id, k) for
/// the segments `ids`, all contacts or, given `in_keys` (a condition on the
/// membership row `m`), those it names: members who no longer qualify
/// leave, new ones enter, the others keep their `entered_at`.
fn changed_members(
    want: &str,
    membership: &str,
    key: &str,
    ids: &[String],
    in_keys: &str,
    tracked: &[i64],
) -> String {
    let for_keys = !in_keys.is_empty();
    // For given contacts, `segment_id + 0` keeps the segment list out of the
    // index condition: the generic plan would otherwise AND a scan of the
    // primary key over every member of the segments with the key index.
    let segment_id = if for_keys { "(m.segment_id OPERATOR(pg_catalog.+) 0)" } else { "m.segment_id" };
    // Only the segments that gain members need the lock. For given contacts
    // (every statement of a mixed segment's maintenance), those they are not
    // in yet: concurrent writers would otherwise share locks on every
    // segment their contacts belong to. A full recompute is of one segment.
    let gaining = if for_keys {
        format!(
            "SELECT w.segment_id FROM want w WHERE NOT EXISTS (
                 SELECT FROM {membership} m WHERE m.segment_id OPERATOR(pg_catalog.=) w.segment_id
                                              AND m.{key} OPERATOR(pg_catalog.=) w.k)"
        )
    } else {
        "SELECT w.segment_id FROM want w".to_string()
    };
    format!(
        "WITH want AS MATERIALIZED ({want}),
              gone AS (DELETE FROM {membership} m
                        WHERE {segment_id} OPERATOR(pg_catalog.=) ANY (ARRAY[{}]::pg_catalog.int8[]){in_keys}
                          AND NOT EXISTS (SELECT FROM want w WHERE w.segment_id OPERATOR(pg_catalog.=) m.segment_id
                                                               AND w.k OPERATOR(pg_catalog.=) m.{key})
                       RETURNING m.segment_id, m.{key} AS k),
              {},
              added AS (INSERT INTO {membership} (segment_id, {key}) SELECT w.segment_id, w.k FROM want w
                         WHERE w.segment_id OPERATOR(pg_catalog.=) {LIVE}
                        ON CONFLICT DO NOTHING RETURNING segment_id, {key} AS k){}",
        ids.join(", "),
        live(&gaining),
        accounting(tracked)
    )
}

/// The statement that lists how `membership` differs from `want`
/// (segment_id, k) for the segments `ids` and the contacts `in_keys` (a
/// condition on the membership row `m`) names, as flips (segment_id, key as
/// text, entering): the contacts' rows are locked (`lock_contacts`), so
/// nothing moves them between this statement and the writes
/// (`write_flips`). `segment_id + 0` as in `changed_members`.
fn flipped_members(want: &str, membership: &str, key: &str, ids: &[String], in_keys: &str) -> String {
    format!(
        "WITH want AS MATERIALIZED ({want})
         SELECT w.segment_id, w.k::pg_catalog.text, true FROM want w
          WHERE NOT EXISTS (SELECT FROM {membership} m WHERE m.segment_id OPERATOR(pg_catalog.=) w.segment_id
                                                         AND m.{key} OPERATOR(pg_catalog.=) w.k)
         UNION ALL
         SELECT m.segment_id, m.{key}::pg_catalog.text, false FROM {membership} m
          WHERE (m.segment_id OPERATOR(pg_catalog.+) 0) OPERATOR(pg_catalog.=) ANY (ARRAY[{}]::pg_catalog.int8[]){in_keys}
            AND NOT EXISTS (SELECT FROM want w WHERE w.segment_id OPERATOR(pg_catalog.=) m.segment_id
                                                 AND w.k OPERATOR(pg_catalog.=) m.{key})",
        ids.join(", ")
    )
}

/// The CTE `live`: the segments among `ids` (a query) that still exist,
/// locked against drop_segment until commit. Every statement that adds
/// members filters them by `LIVE`, which evaluates `live` before the first
/// row is written: membership tables have no foreign key, and a segment
/// dropped meanwhile is thus skipped instead of left with members.
pub fn live(ids: &str) -> String {
    format!(
        "live AS (SELECT d.id FROM segments.segment_def d
                   WHERE d.id IN ({ids}) FOR KEY SHARE OF d)"
    )
}

/// Deletes what dropped segments (`ids`) leave in the tables without a
/// foreign key: their count deltas and, if the table stays, their members.
/// Called once the segments' rows are deleted, which waited for every writer
/// that had locked them (`live`); under the latest snapshot, which also
/// reaches what such writers committed after this transaction's snapshot.
pub fn forget_segments(ids: &[i64], membership: Option<&str>) {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let list = format!("ANY (ARRAY[{}]::pg_catalog.int8[])", list.join(", "));
    Spi::connect_mut(|_| {
        if let Some(m) = membership {
            run_latest(&format!("DELETE FROM {m} WHERE segment_id OPERATOR(pg_catalog.=) {list}"));
        }
        run_latest(&format!("DELETE FROM segments.count_delta WHERE segment_id OPERATOR(pg_catalog.=) {list}"));
    });
}

/// `ANY (…)` of the segment ids in `live`.
pub const LIVE: &str = "ANY (ARRAY(SELECT live.id FROM live))";

/// The end of every statement that changes memberships: given CTEs `added`
/// and `gone` (segment_id, k), writes the count deltas and, for the
/// `tracked` segments, the change log, and returns (segment_id, entered,
/// left) per segment that changed.
fn accounting(tracked: &[i64]) -> String {
    let log = match any_of(tracked) {
        None => String::new(),
        Some(t) => format!(
            ", logged AS (INSERT INTO segments.changes (segment_id, key, change)
                 SELECT segment_id, k::pg_catalog.text, 'enter' FROM added WHERE segment_id OPERATOR(pg_catalog.=) {t}
                 UNION ALL
                 SELECT segment_id, k::pg_catalog.text, 'leave' FROM gone WHERE segment_id OPERATOR(pg_catalog.=) {t})"
        ),
    };
    format!(
        ", n AS (SELECT segment_id, pg_catalog.sum(e)::pg_catalog.int8 AS entered, pg_catalog.sum(l)::pg_catalog.int8 AS left_
                 FROM (SELECT segment_id, 1 AS e, 0 AS l FROM added UNION ALL SELECT segment_id, 0, 1 FROM gone) x
                GROUP BY segment_id),
         counted AS (INSERT INTO segments.count_delta (segment_id, delta)
                     SELECT segment_id, entered OPERATOR(pg_catalog.-) left_ FROM n
                      WHERE entered OPERATOR(pg_catalog.<>) left_){log}
         SELECT segment_id, entered, left_ FROM n"
    )
}

/// `ANY (…)` of `ids`, None if there are none.
fn any_of(ids: &[i64]) -> Option<String> {
    if ids.is_empty() {
        return None;
    }
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    Some(format!("ANY (ARRAY[{}]::pg_catalog.int8[])", list.join(", ")))
}

/// The result of a statement ending in `accounting` or `new_members`:
/// (segment_id, entered, left) per segment that changed.
fn deltas() -> HashMap<i64, Delta> {
    let ids = result_column::<i64>(1);
    let entered = result_column::<i64>(2);
    let left = result_column::<i64>(3);
    ids.into_iter()
        .zip(entered.into_iter().zip(left))
        .filter_map(|(id, (e, l))| Some((id?, Delta { entered: e.unwrap_or(0), left: l.unwrap_or(0) })))
        .collect()
}

/// Active segments of `source` that read `table`, then every active segment
/// that references one of them, dependencies first.
fn targets(source: pg_sys::Oid, table: pg_sys::Oid) -> Vec<Target> {
    closure(
        "SELECT d.id, 0 FROM segments.segment_def d
          WHERE d.source OPERATOR(pg_catalog.=) $1 AND d.kind OPERATOR(pg_catalog.=) 'active'
            AND EXISTS (SELECT FROM segments.segment_read r
                         WHERE r.segment_id OPERATOR(pg_catalog.=) d.id AND r.relid OPERATOR(pg_catalog.=) $2)",
        &[source.into(), table.into()],
    )
}

/// The time-relative active segments of `source` and the active segments
/// that reference them: what refresh_due() has to look at.
fn time_relative(source: pg_sys::Oid) -> Vec<Target> {
    closure(
        "SELECT d.id, 0 FROM segments.segment_def d
          WHERE d.source OPERATOR(pg_catalog.=) $1 AND d.kind OPERATOR(pg_catalog.=) 'active' AND d.time_relative",
        &[source.into()],
    )
}

/// The active segments that reference segment `id`, directly or not,
/// dependencies first.
pub fn dependents(id: i64) -> Vec<Target> {
    closure("SELECT segment_id, 1 FROM segments.dependency WHERE depends_on OPERATOR(pg_catalog.=) $1", &[id.into()])
}

/// The `seed` segments (rows of id and depth) and all the segments that
/// reference them through `IN SEGMENT`, active ones only, each after the
/// segments it references.
fn closure(seed: &str, args: &[pgrx::datum::DatumWithOid<'_>]) -> Vec<Target> {
    let sql = format!(
        "WITH RECURSIVE hit(id, depth) AS (
             {seed}
             UNION ALL
             SELECT x.segment_id, hit.depth OPERATOR(pg_catalog.+) 1
               FROM segments.dependency x JOIN hit ON x.depends_on OPERATOR(pg_catalog.=) hit.id
              WHERE hit.depth OPERATOR(pg_catalog.<) 1000)
         SELECT d.id, d.name, d.definition, d.track_changes, d.shared, h.depth
           FROM (SELECT id, max(depth) AS depth FROM hit GROUP BY id) h
           JOIN segments.segment_def d ON d.id OPERATOR(pg_catalog.=) h.id
          WHERE d.kind OPERATOR(pg_catalog.=) 'active'
          ORDER BY h.depth, d.id"
    );
    Spi::connect(|client| {
        client
            .select(&sql, None, args)
            .expect("reading the segments to maintain")
            .map(|r| Target {
                id: r.get(1).ok().flatten().unwrap_or_default(),
                name: r.get(2).ok().flatten().unwrap_or_default(),
                definition: r.get(3).ok().flatten().unwrap_or_default(),
                track_changes: r.get(4).ok().flatten().unwrap_or(false),
                shared: r.get(5).ok().flatten().unwrap_or(true),
                depth: r.get(6).ok().flatten().unwrap_or(0),
            })
            .collect()
    })
}

/// Recomputes `targets` (in dependency order) for `keys` (None: every
/// contact), one statement per dependency level. Returns how many
/// memberships changed and the NOTIFY entries of the tracked, shared
/// segments that changed.
pub fn apply(targets: &[&Target], reg: &Registered, rows: Rows) -> (i64, Vec<String>) {
    let mut changed = 0;
    let mut summary = vec![];
    for level in targets.chunk_by(|a, b| a.depth == b.depth) {
        let jobs: Vec<Job> = level.iter().map(|t| Job::of(t, reg)).collect();
        changed += account(level, &recompute(&jobs, reg, rows), &mut summary);
    }
    (changed, summary)
}

/// Bookkeeping after membership changes of `targets`: folds counts now and
/// then, and adds the NOTIFY entries of tracked, shared segments to
/// `summary`. Returns how many memberships changed.
fn account(targets: &[&Target], deltas: &HashMap<i64, Delta>, summary: &mut Vec<String>) -> i64 {
    let mut changed = 0;
    // Few of many segments change at a time: their ids, sorted, are cheaper
    // to search than the map is to hash once per target.
    let mut ids: Vec<i64> = deltas.iter().filter(|(_, d)| d.entered != 0 || d.left != 0).map(|(&id, _)| id).collect();
    ids.sort_unstable();
    for t in targets.iter().filter(|t| ids.binary_search(&t.id).is_ok()) {
        let d = deltas[&t.id];
        changed += d.entered + d.left;
        fold_sometimes(t.id);
        if t.track_changes && t.shared {
            summary.push(format!(
                "{{\"id\":{},\"name\":{},\"entered\":{},\"left\":{}}}",
                t.id,
                serde_json::Value::String(t.name.clone()),
                d.entered,
                d.left
            ));
        }
    }
    changed
}

/// Waits for every transaction writing a table whose rows active segments
/// of `reg` may read (the source, its relations and lookup targets), then
/// for those writing its membership table (`refresh_due`), and keeps new
/// ones waiting until this transaction ends (`SHARE` mode, as `CREATE
/// INDEX` takes it): what creating or redefining an active segment needs.
/// Its members are computed afterwards, under a snapshot that sees what the
/// writers committed; a writer that comes later finds the new definition
/// (`check_catalog` under REPEATABLE READ). Without this, a writer that
/// maintained the segments under the old catalog and a fill that could not
/// see its change yet left a wrong membership (a contact entering the old
/// definition stayed in the new one). Under REPEATABLE READ the members
/// would be computed under a snapshot older than what it waited for:
/// refused. Data tables first: writers lock them before the membership
/// table, so the order cannot deadlock with a single statement.
pub fn block_writers(reg: &Registered) {
    if crate::direct::repeatable_read() {
        fail_hint(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "an active segment can be created or redefined only under READ COMMITTED".into(),
            "under REPEATABLE READ its members would be computed under a snapshot that misses what concurrent writers commit",
        );
    }
    let mut tables = catalog::registered_tables(reg.relid);
    tables.push(reg.membership_relid);
    // SAFETY: locks registered tables, held until the transaction ends.
    tables.iter().for_each(|&t| unsafe { pg_sys::LockRelationOid(t, pg_sys::ShareLock as i32) });
}

/// Under REPEATABLE READ, fails with 40001 unless the active segments of
/// `sources` read under the transaction's snapshot are those committed now:
/// maintenance decided under an older catalog than the one a concurrent
/// `create_segment` or `redefine_segment` filled its members under would
/// leave them wrong (`block_writers`).
fn check_catalog(sources: &[pg_sys::Oid]) {
    if !crate::direct::repeatable_read() || sources.is_empty() {
        return;
    }
    let list: Vec<String> = sources.iter().map(|s| s.to_u32().to_string()).collect();
    let sql = format!(
        "SELECT pg_catalog.string_agg(id::pg_catalog.text OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) definition,
                                      ',' ORDER BY id)
           FROM segments.segment_def
          WHERE kind OPERATOR(pg_catalog.=) 'active'
            AND source::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ('{{{}}}'::pg_catalog.oid[])",
        list.join(",")
    );
    let seen = Spi::get_one::<String>(&sql).ok().flatten();
    let now = Spi::connect_mut(|_| {
        run_latest(&sql);
        result_column::<String>(1).into_iter().next().flatten()
    });
    if seen != now {
        crate::direct::serialization_failure("change of segment definitions");
    }
}

/// Brings every time-relative active segment up to date with the passing of
/// time: only the contacts whose time values crossed a boundary since the
/// segment's last sweep are recomputed (and, for segments that reference
/// those, the same contacts). Returns how many memberships changed.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn refresh_due() -> i64 {
    let sources = Spi::get_one::<Vec<pg_sys::Oid>>(
        "SELECT COALESCE(pg_catalog.array_agg(relid::pg_catalog.oid ORDER BY relid), '{}') FROM segments.source",
    )
    .ok()
    .flatten()
    .unwrap_or_default();
    as_owner(|| {
        let mut changed = 0;
        for source in sources {
            let Some(reg) = catalog::registered(source) else { continue };
            // Before the definitions are read: a create_segment or
            // redefine_segment in progress is waited for (`block_writers`).
            // SAFETY: locks the membership table until the transaction ends.
            unsafe { pg_sys::LockRelationOid(reg.membership_relid, pg_sys::RowExclusiveLock as i32) };
            check_catalog(&[source]);
            let mut swept: HashMap<i64, Vec<String>> = HashMap::new();
            let mut summary = vec![];
            for t in time_relative(source) {
                let sweep = compiled(t.id, &t.definition, &reg).sweep;
                let mut keys: Vec<String> = match &sweep {
                    Some(sql) => Spi::connect(|client| {
                        client
                            .select(&format!("SELECT DISTINCT k FROM ({sql}) x WHERE k IS NOT NULL"), None, &[])
                            .expect("finding contacts that crossed a boundary")
                            .filter_map(|r| r.get::<String>(1).ok().flatten())
                            .collect()
                    }),
                    None => vec![],
                };
                for dep in depends_on(t.id) {
                    keys.extend(swept.get(&dep).cloned().unwrap_or_default());
                }
                keys.sort();
                keys.dedup();
                if !keys.is_empty() {
                    lock_contacts(&reg, &keys);
                    let (n, entries) = apply(&[&t], &reg, Rows::Keys(&keys));
                    changed += n;
                    summary.extend(entries);
                }
                if sweep.is_some() {
                    Spi::run_with_args(
                        "UPDATE segments.segment_def SET swept_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
                        &[t.id.into()],
                    )
                    .expect("recording the sweep");
                }
                swept.insert(t.id, keys);
            }
            notify(source, summary);
        }
        changed
    })
}

fn depends_on(id: i64) -> Vec<i64> {
    Spi::get_one_with_args::<Vec<i64>>(
        "SELECT COALESCE(pg_catalog.array_agg(depends_on), '{}') FROM segments.dependency WHERE segment_id OPERATOR(pg_catalog.=) $1",
        &[id.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_default()
}

thread_local! {
    static WRITES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Folds a segment's count deltas every 64 changes made by this backend:
/// often enough to keep `member_count` an index range of a few rows, rarely
/// enough to cost nothing on the write path.
fn fold_sometimes(id: i64) {
    let n = WRITES.with(|w| {
        w.set(w.get().wrapping_add(1));
        w.get()
    });
    if n % 64 == 0 {
        crate::direct::fold_count(id);
    }
}

pub fn notify(source: pg_sys::Oid, summary: Vec<String>) {
    if summary.is_empty() {
        return;
    }
    let payload = format!(
        "{{\"source\":{},\"segments\":[{}]}}",
        serde_json::Value::String(crate::privilege::regclass_text(source)),
        summary.join(",")
    );
    Spi::run(&format!("SELECT pg_catalog.pg_notify('segments', {})", literal(&payload))).expect("NOTIFY segments");
}

/// Locks the source rows of `keys`, in the byte order of the keys' text
/// forms whichever way, so that two statements touching overlapping
/// contacts cannot deadlock. Taken in its own statement:
/// the recompute that follows gets a snapshot that sees whatever the
/// transaction we waited for committed (READ COMMITTED), and under
/// REPEATABLE READ a concurrent change raises 40001. Returns the keys whose
/// contacts were locked under that very key (sorted;
/// `direct::lock_contacts`), none when the statement locked them.
fn lock_contacts(reg: &Registered, keys: &[String]) -> Vec<String> {
    // A few contacts through the key's unique index, without the start-up
    // of a statement; many (one index scan for all) or without that index
    // (dropped since registration) by the statement.
    if keys.len() <= FEW_CONTACTS {
        if let Some(locked) = crate::direct::lock_contacts(reg.relid, &reg.key, keys) {
            return locked;
        }
    }
    let sql = format!(
        "SELECT FROM {} s WHERE s.{k} OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::{}[])
          ORDER BY s.{k}::pg_catalog.text COLLATE pg_catalog.\"C\" FOR NO KEY UPDATE OF s",
        reg.source,
        reg.key_type,
        k = ident(&reg.key)
    );
    pinned_search_path(|| Spi::connect_mut(|_| run_kept(&sql, &[pg_sys::TEXTARRAYOID], &[text_array(keys)])));
    vec![]
}

/// What the trigger of one table needs for one source it feeds: the table
/// may play several roles for that source (registered as two relations, or as
/// a relation and a lookup), but the segments to recompute are the same, so
/// each statement recomputes them once.
struct Feed {
    reg: Registered,
    roles: Vec<Role>,
    /// Active segments to recompute, dependencies first.
    targets: Vec<Target>,
    /// When the table is the source and nothing else: the targets whose
    /// predicates read only the contact's row (indices into `targets`), and
    /// those predicates compiled for in-process evaluation.
    local: Vec<usize>,
    filters: Option<RowFilters>,
    /// Per role, the attribute number of its column (`Role::column`) in the
    /// table's rows: for the source, the key's.
    attnums: Vec<i32>,
    /// The attribute numbers of the columns whose change matters to this
    /// source (`watched_columns`): an UPDATE that changes none is ignored.
    watched: Vec<i32>,
    /// When the table is one relation of the source and nothing else: per
    /// target, whether a row of it can change the target
    /// (`codegen::relevance`), compiled for in-process evaluation.
    relevance: Option<RowFilters>,
    /// With `relevance`: per target, what a row inserted that can change it
    /// makes of the row's contact, when that alone decides it
    /// (`codegen::insert_decides`).
    decided: Vec<Option<bool>>,
}

impl Feed {
    /// The targets that `local` does not cover.
    fn others(&self) -> Vec<&Target> {
        self.targets.iter().enumerate().filter(|(i, _)| !self.local.contains(i)).map(|(_, t)| t).collect()
    }
}

thread_local! {
    /// Per table: the feeds its trigger works with. Built on first use and
    /// dropped whenever the segment catalog or the table changes (see
    /// `on_relcache`).
    static CONTEXTS: RefCell<HashMap<pg_sys::Oid, std::rc::Rc<Vec<Feed>>>> = RefCell::new(HashMap::new());
    /// The oid of segments.segment_def, whose relcache invalidation says
    /// "the catalog changed"; and whether the callbacks are registered.
    static CATALOG_OID: std::cell::Cell<pg_sys::Oid> = const { std::cell::Cell::new(pg_sys::Oid::INVALID) };
    static CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// How many invalidations of the segment catalog this backend processed.
    static GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The catalog generation: it changes whenever this backend learns that the
/// segment catalog changed, so what was decided from the catalog under one
/// generation still holds while it is current (see `direct::lock_live`).
pub fn catalog_generation() -> u64 {
    GENERATION.with(|g| g.get())
}

/// Relcache callback: forgets everything cached about the segment catalog
/// when segments.segment_def is invalidated (or everything is), and a
/// table's feeds when the table changes (its row type may have).
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let catalog = CATALOG_OID.with(|c| c.get());
    if relid == pg_sys::Oid::INVALID || (relid == catalog && catalog != pg_sys::Oid::INVALID) {
        GENERATION.with(|g| g.set(g.get() + 1));
        CONTEXTS.with(|c| c.borrow_mut().clear());
        COMPILED.with(|c| c.borrow_mut().clear());
        crate::api::members::forget_lookups();
        // The table may have been dropped with the extension: look it (and
        // the extension's owner) up again next time.
        CATALOG_OID.with(|c| c.set(pg_sys::Oid::INVALID));
        crate::privilege::forget_owner();
    } else {
        CONTEXTS.with(|c| c.borrow_mut().remove(&relid));
    }
}

/// Subtransaction callback: what the row trigger collected inside an
/// aborted subtransaction (or one nested in it) never reaches a statement
/// trigger, and must not reach the next one.
unsafe extern "C-unwind" fn on_subxact(
    event: pg_sys::SubXactEvent::Type,
    subxact: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        UPDATED.with(|u| u.borrow_mut().values_mut().for_each(|v| v.retain(|p| p.subxact < subxact)));
        crate::direct::forget_count_rows();
    }
}

unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    let abort = event == pg_sys::XactEvent::XACT_EVENT_ABORT || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT;
    if abort {
        UPDATED.with(|u| u.borrow_mut().clear());
    }
    if abort || event == pg_sys::XactEvent::XACT_EVENT_PREPARE {
        crate::direct::forget_count_rows();
    }
}

/// Syscache callback for roles and role memberships: which segments a role
/// sees, and may change, follows them.
unsafe extern "C-unwind" fn on_roles(_arg: pg_sys::Datum, _cacheid: i32, _hash: u32) {
    crate::api::members::forget_lookups();
}

/// The oid of segments.segment_def; also registers the callbacks that keep
/// this backend's caches of the catalog (`CONTEXTS`, `COMPILED`, and the
/// lookups of is_member and segments_of) in step with it.
pub fn catalog_oid() -> pg_sys::Oid {
    let known = CATALOG_OID.with(|c| c.get());
    if known != pg_sys::Oid::INVALID {
        return known;
    }
    let oid = Spi::get_one::<pg_sys::Oid>("SELECT 'segments.segment_def'::pg_catalog.regclass::pg_catalog.oid")
        .ok()
        .flatten()
        .unwrap_or(pg_sys::Oid::INVALID);
    CATALOG_OID.with(|c| c.set(oid));
    if !CALLBACK.with(|c| c.replace(true)) {
        // SAFETY: registers plain functions for the backend's lifetime, once.
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0usize));
            for cache in [
                pg_sys::SysCacheIdentifier::AUTHOID,
                pg_sys::SysCacheIdentifier::AUTHMEMMEMROLE,
                pg_sys::SysCacheIdentifier::AUTHMEMROLEMEM,
            ] {
                pg_sys::CacheRegisterSyscacheCallback(cache as i32, Some(on_roles), pg_sys::Datum::from(0usize));
            }
            pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
            pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
        }
    }
    oid
}

/// Tells every backend (this one at its next command) that the segment
/// catalog changed, through a relcache invalidation of segments.segment_def
/// sent at commit. Every API function that changes the catalog calls it.
pub fn catalog_changed() {
    let oid = catalog_oid();
    // SAFETY: queues an invalidation message for an existing relation.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(oid) };
}

/// What the trigger does with SQL runs as the extension owner with a
/// pinned search_path (segments.maintain() has no SET clause: see
/// `pinned_search_path`).
fn trigger_work<R>(f: impl FnOnce() -> R) -> R {
    as_owner(|| pinned_search_path(f))
}

/// The feeds of the trigger's table `rel`: from the cache without running
/// anything, else read from the catalog.
fn context(rel: pg_sys::Relation) -> std::rc::Rc<Vec<Feed>> {
    // SAFETY: the trigger's relation, open for the statement.
    let table = unsafe { (*rel).rd_id };
    if let Some(c) = CONTEXTS.with(|c| c.borrow().get(&table).cloned()) {
        return c;
    }
    trigger_work(|| build_context(rel))
}

fn build_context(rel: pg_sys::Relation) -> std::rc::Rc<Vec<Feed>> {
    catalog_oid();
    // SAFETY: the trigger's relation, open for the statement.
    let (table, desc) = unsafe { ((*rel).rd_id, (*rel).rd_att) };
    let mut feeds: Vec<Feed> = vec![];
    for (source, role) in roles(table) {
        if let Some(f) = feeds.iter_mut().find(|f| f.reg.relid == source) {
            f.roles.push(role);
        } else if let Some(reg) = catalog::registered(source) {
            let targets = targets(source, table);
            feeds.push(Feed {
                targets,
                roles: vec![role],
                reg,
                local: vec![],
                filters: None,
                attnums: vec![],
                watched: vec![],
                relevance: None,
                decided: vec![],
            });
        }
    }
    for f in feeds.iter_mut() {
        f.attnums = f.roles.iter().map(|r| attnum(desc, r.column(&f.reg))).collect();
        f.watched = watched_columns(table, Some(f.reg.relid)).iter().map(|c| attnum(desc, c)).filter(|&n| n > 0).collect();
    }
    for f in feeds.iter_mut() {
        if let [Role::Relation { name, .. }] = f.roles.as_slice() {
            let preds: Vec<crate::typecheck::Pred> =
                f.targets.iter().map(|t| compiled(t.id, &t.definition, &f.reg).pred).collect();
            let sql: Vec<String> =
                preds.iter().map(|p| crate::codegen::relevance(p, name, "\"s\"", &f.reg.key)).collect();
            f.decided = preds.iter().map(|p| crate::codegen::insert_decides(p, name)).collect();
            // SAFETY: `desc` describes the rows of `table`, the relation.
            f.relevance = Some(unsafe { RowFilters::new(&crate::privilege::regclass_text(table), desc, &sql) });
        }
    }
    for f in feeds.iter_mut().filter(|f| matches!(f.roles.as_slice(), [Role::Source])) {
        let mut predicates = vec![];
        for (i, t) in f.targets.iter().enumerate() {
            let c = compiled(t.id, &t.definition, &f.reg);
            if c.local() {
                f.local.push(i);
                predicates.push(c.predicate);
            }
        }
        if !predicates.is_empty() {
            // SAFETY: `desc` describes the rows of `table`, the source.
            f.filters = Some(unsafe { RowFilters::new(&f.reg.source, desc, &predicates) });
        }
    }
    // What was read above was read under the transaction's snapshot.
    check_catalog(&feeds.iter().map(|f| f.reg.relid).collect::<Vec<_>>());
    let feeds = std::rc::Rc::new(feeds);
    CONTEXTS.with(|c| c.borrow_mut().insert(table, feeds.clone()));
    feeds
}

/// How a table relates to a source.
enum Role {
    Source,
    /// `name`: the relation's registered name, as definitions call it.
    Relation { contact_column: String, name: String },
    Lookup { via_column: String, target_key: String },
}

fn roles(table: pg_sys::Oid) -> Vec<(pg_sys::Oid, Role)> {
    Spi::connect(|client| {
        client
            .select(
                "SELECT relid::pg_catalog.oid, 'source', NULL::text, NULL::text FROM segments.source
                  WHERE relid OPERATOR(pg_catalog.=) $1
                 UNION ALL
                 SELECT source::pg_catalog.oid, 'relation', contact_column::text, name FROM segments.relation
                  WHERE relation OPERATOR(pg_catalog.=) $1
                 UNION ALL
                 SELECT source::pg_catalog.oid, 'lookup', via_column::text, target_key::text FROM segments.lookup
                  WHERE target OPERATOR(pg_catalog.=) $1",
                None,
                &[table.into()],
            )
            .expect("reading registrations")
            .map(|r| {
                let source: pg_sys::Oid = r.get(1).ok().flatten().unwrap_or(pg_sys::Oid::INVALID);
                let kind: String = r.get(2).ok().flatten().unwrap_or_default();
                let a: String = r.get(3).ok().flatten().unwrap_or_default();
                let b: String = r.get(4).ok().flatten().unwrap_or_default();
                let role = match kind.as_str() {
                    "source" => Role::Source,
                    "relation" => Role::Relation { contact_column: a, name: b },
                    _ => Role::Lookup { via_column: a, target_key: b },
                };
                (source, role)
            })
            .collect()
    })
}

/// The contact keys (as text) an INSERT or DELETE touched, from its
/// transition table.
fn touched(trigdata: *mut pg_sys::TriggerData, reg: &Registered, role: &Role, table: &str) -> Vec<String> {
    let pick = |column: &str| format!("SELECT {}::pg_catalog.text AS k FROM {table}", ident(column));
    let sql = match role {
        Role::Source => pick(&reg.key),
        Role::Relation { contact_column, .. } => pick(contact_column),
        Role::Lookup { via_column, target_key } => format!(
            "SELECT s.{}::pg_catalog.text AS k FROM {} s WHERE s.{}::pg_catalog.text IN ({})",
            ident(&reg.key),
            reg.source,
            ident(via_column),
            pick(target_key)
        ),
    };
    let sql = format!("SELECT k FROM ({sql}) x WHERE k IS NOT NULL");
    Spi::connect_mut(|_| {
        // SAFETY: registers this trigger's transition tables with this SPI
        // connection, the one the query below runs in.
        unsafe { pg_sys::SPI_register_trigger_data(trigdata) };
        run_kept(&sql, &[], &[]);
        result_column::<String>(1).into_iter().flatten().collect()
    })
}

/// What the rows of a relation's transition table ask for (`relevant`).
struct Relevant<'f> {
    /// The contacts of the rows that can change some target, sorted.
    keys: Vec<String>,
    /// The targets they can change: those whose filters one of the rows
    /// passes, and, if there is one, every target that references other
    /// segments (one of those may change).
    targets: Vec<&'f Target>,
    /// Inserted rows only: (index into `Feed::targets`, contact) for each
    /// target an inserted row of the contact decides (`Feed::decided`).
    decided: Vec<(usize, String)>,
}

/// What the rows of a transition table (`new`: the inserted rows, else the
/// deleted ones) of a relation (`Feed::relevance`) ask for. Decided in
/// process from the transition table, as the UPDATE row trigger decides on
/// the row images: the query over the transition table this replaces was
/// ~5% of a one-row INSERT's backend with 10 event-count segments.
fn relevant<'f>(trigdata: *mut pg_sys::TriggerData, f: &'f Feed, new: bool) -> Relevant<'f> {
    let Some(relevance) = &f.relevance else { unreachable!("a feed of one relation") };
    // SAFETY: called by the trigger manager with the transition tables of
    // the trigger's relation, whose rows `desc` describes; `attnums[0]` is
    // the relation's contact column (its only role).
    let (store, desc) = unsafe {
        let (rel, new_rows, old_rows) = ((*trigdata).tg_relation, (*trigdata).tg_newtable, (*trigdata).tg_oldtable);
        (if new { new_rows } else { old_rows }, (*rel).rd_att)
    };
    let mut hit = vec![false; f.targets.len()];
    let mut keys = vec![];
    let mut decided = vec![];
    // SAFETY: as above.
    unsafe {
        transition_rows(store, desc, |row| {
            let hits = relevance.matches(row);
            if hits.contains(&true) {
                if let Some(key) = text_value(row, desc, f.attnums[0]) {
                    for (i, _) in hits.iter().enumerate().filter(|&(i, &h)| h && new && f.decided[i].is_some()) {
                        decided.push((i, key.clone()));
                    }
                    keys.push(key);
                    hit.iter_mut().zip(hits).for_each(|(h, r)| *h |= r);
                }
            }
        })
    };
    let any_hit = hit.contains(&true);
    let targets = f.targets.iter().zip(&hit).filter(|(t, &h)| h || (any_hit && t.depth > 0)).map(|(t, _)| t).collect();
    keys.sort();
    keys.dedup();
    decided.sort();
    decided.dedup();
    Relevant { keys, targets, decided }
}

/// Calls `each` with every row of the transition table `store` (rows
/// described by `desc`), read through a read pointer of its own, as a query
/// over the table reads it (nodeNamedtuplestorescan.c).
///
/// # Safety
/// `store` must be a transition table of the running trigger, of rows
/// described by `desc`.
unsafe fn transition_rows(store: *mut pg_sys::Tuplestorestate, desc: pg_sys::TupleDesc, mut each: impl FnMut(pg_sys::HeapTuple)) {
    if store.is_null() {
        return;
    }
    unsafe {
        let slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple);
        let reader = pg_sys::tuplestore_alloc_read_pointer(store, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(store, reader);
        pg_sys::tuplestore_rescan(store);
        while pg_sys::tuplestore_gettupleslot(store, true, false, slot) {
            let mut copied = false;
            let row = pg_sys::ExecFetchSlotHeapTuple(slot, false, &mut copied);
            each(row);
            if copied {
                pg_sys::heap_freetuple(row);
            }
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
    }
}

/// Applies membership flips of `targets` decided without a query, without
/// a statement (`direct`): the contacts' rows are locked (by the UPDATE
/// itself, or `lock_contacts`).
fn apply_flips(f: &Feed, targets: &[&Target], flips: &[&Flip], summary: &mut Vec<String>) {
    let tracked: Vec<i64> = targets.iter().filter(|t| t.track_changes).map(|t| t.id).collect();
    let deltas = write_flips(&f.reg, flips, &tracked);
    account(targets, &deltas, summary);
}

/// Writes `flips` into the source's membership table (`direct`), the
/// changes of the `tracked` segments into their change log; returns how
/// many members entered and left each segment.
fn write_flips(reg: &Registered, flips: &[&Flip], tracked: &[i64]) -> HashMap<i64, Delta> {
    let (deltas, done) = crate::direct::apply_flips(reg.membership_relid, &reg.key, flips);
    let logged: Vec<&&Flip> =
        flips.iter().zip(&done).filter(|(flip, &done)| done && tracked.contains(&flip.segment)).map(|(flip, _)| flip).collect();
    if !logged.is_empty() {
        let ids: Vec<i64> = logged.iter().map(|l| l.segment).collect();
        let keys: Vec<String> = logged.iter().map(|l| l.key.clone()).collect();
        let changes: Vec<String> = logged.iter().map(|l| if l.enter { "enter" } else { "leave" }.to_string()).collect();
        let args = [ids.into_datum().expect("an int8[] datum"), text_array(&keys), text_array(&changes)];
        pinned_search_path(|| Spi::connect_mut(|_| {
            run_kept(
                "INSERT INTO segments.changes (segment_id, key, change)
                 SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.text[]),
                                          pg_catalog.unnest($3::pg_catalog.text[]))",
                &[pg_sys::INT8ARRAYOID, pg_sys::TEXTARRAYOID, pg_sys::TEXTARRAYOID],
                &args,
            )
        }));
    }
    deltas
}

impl Role {
    /// The column of the table that says which contact (or lookup row) a
    /// row belongs to.
    fn column<'a>(&'a self, reg: &'a Registered) -> &'a str {
        match self {
            Role::Source => &reg.key,
            Role::Relation { contact_column, .. } => contact_column,
            Role::Lookup { target_key, .. } => target_key,
        }
    }
}

/// What an updated row asks of the statement trigger, for one source.
enum Touch {
    /// Recompute the contact: for every target (`all`), or for those the
    /// row filters do not cover.
    Contact { key: String, all: bool },
    /// Recompute the contacts that point at this lookup row.
    Lookup { via_column: String, value: String },
    /// The contact entered (or left) a row-local segment.
    Flip(Flip),
}

struct Pending {
    /// The subtransaction the row was updated in (see `on_subxact`).
    subxact: pg_sys::SubTransactionId,
    source: pg_sys::Oid,
    touch: Touch,
}

thread_local! {
    /// Per table, what the row trigger found in the rows an UPDATE changed
    /// in a column some segment reads, consumed by the statement trigger.
    static UPDATED: RefCell<HashMap<pg_sys::Oid, Vec<Pending>>> = RefCell::new(HashMap::new());
}

/// The attribute number of column `name` in rows described by `desc`
/// (0: none).
fn attnum(desc: pg_sys::TupleDesc, name: &str) -> i32 {
    crate::direct::find_column(desc, name).map_or(0, i32::from)
}

/// Attribute `n` of `tuple`, as text (None: NULL).
///
/// # Safety
/// `tuple` must be a row described by `desc`.
unsafe fn text_value(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc, n: i32) -> Option<String> {
    unsafe {
        let value = pg_sys::SPI_getvalue(tuple, desc, n);
        if value.is_null() {
            return None;
        }
        let text = std::ffi::CStr::from_ptr(value).to_string_lossy().into_owned();
        pg_sys::pfree(value.cast());
        Some(text)
    }
}

/// Whether both rows hold the same bytes in attribute `n` (`Some(true)`),
/// different ones (`Some(false)`), or NULL in both (None). The same bytes
/// are the same value; different bytes may still be equal values (`1.0` and
/// `1.00`, a compressed and a plain text): then the change is taken for
/// one, which costs work, never exactness.
///
/// # Safety
/// Both tuples must be rows described by `desc`, `n` one of its attributes.
unsafe fn same_bytes(old: pg_sys::HeapTuple, new: pg_sys::HeapTuple, desc: pg_sys::TupleDesc, n: i32) -> Option<bool> {
    unsafe {
        let (mut old_null, mut new_null) = (false, false);
        let a = pg_sys::SPI_getbinval(old, desc, n, &mut old_null);
        let b = pg_sys::SPI_getbinval(new, desc, n, &mut new_null);
        if old_null || new_null {
            return if old_null && new_null { None } else { Some(false) };
        }
        let attr = &*(*desc).attrs.as_ptr().add(n as usize - 1);
        let (a, b) = (a.cast_mut_ptr::<u8>(), b.cast_mut_ptr::<u8>());
        let len = match attr.attlen {
            _ if attr.attbyval => return Some(a == b),
            -1 => {
                let len = pgrx::varlena::varsize_any(a.cast());
                if len != pgrx::varlena::varsize_any(b.cast()) {
                    return Some(false);
                }
                len
            }
            -2 => std::ffi::CStr::from_ptr(a.cast()).to_bytes().len() + 1,
            len => len as usize,
        };
        Some(std::slice::from_raw_parts(a, len) == std::slice::from_raw_parts(b, len))
    }
}

/// Whether both rows have the same, non-NULL value in attribute `n`.
///
/// # Safety
/// As for `same_bytes`.
unsafe fn same_key(old: pg_sys::HeapTuple, new: pg_sys::HeapTuple, desc: pg_sys::TupleDesc, n: i32) -> bool {
    n > 0 && unsafe { same_bytes(old, new, desc, n) } == Some(true)
}

/// Row trigger of UPDATE, fired when the UPDATE names a watched column
/// (`sync_update_trigger`); a source for which none changed is skipped.
/// Row-local segments are decided here, on the two row images; everything
/// else is left to the statement trigger, by contact.
fn on_row_update(trigdata: *mut pg_sys::TriggerData) {
    // SAFETY: called by the trigger manager with valid trigger data for an
    // AFTER UPDATE row trigger: both tuples are set.
    let (rel, old, new) = unsafe { ((*trigdata).tg_relation, (*trigdata).tg_trigtuple, (*trigdata).tg_newtuple) };
    let (table, desc) = unsafe { ((*rel).rd_id, (*rel).rd_att) };
    // SAFETY: plain call, inside the transaction.
    let subxact = unsafe { pg_sys::GetCurrentSubTransactionId() };
    // Before the feeds: an invalidation while they are built is taken for a
    // change of what they say.
    let generation = catalog_generation();
    let feeds = context(rel);
    let mut seen = vec![];
    let mut push = |source: pg_sys::Oid, touch: Touch| seen.push(Pending { subxact, source, touch });
    for f in feeds.iter().filter(|f| !f.targets.is_empty()) {
        // SAFETY: rows of the trigger's table, attributes of its descriptor.
        if f.watched.iter().all(|&n| unsafe { same_bytes(old, new, desc, n) } != Some(false)) {
            continue;
        }
        let source = f.reg.relid;
        // SAFETY: both tuples are rows of the source, whose only role is
        // `Role::Source` when it has filters: `attnums[0]` is the key's.
        if let (Some(filters), true) = (&f.filters, unsafe { same_key(old, new, desc, f.attnums[0]) }) {
            let flipped = unsafe { filters.flips(old, new) };
            if flipped.is_empty() && f.local.len() == f.targets.len() {
                continue;
            }
            // SAFETY: as above; the key is not NULL (same_key).
            let key = unsafe { text_value(new, desc, f.attnums[0]) }.unwrap_or_default();
            for (j, enter) in flipped {
                let segment = f.targets[f.local[j]].id;
                push(source, Touch::Flip(Flip { segment, key: key.clone(), enter, generation: Some(generation) }));
            }
            if f.local.len() < f.targets.len() {
                push(source, Touch::Contact { key, all: false });
            }
            continue;
        }
        if let Some(relevance) = &f.relevance {
            // SAFETY: rows of the trigger's table, the relation.
            let (before, after) = unsafe { (relevance.matches(old), relevance.matches(new)) };
            if !before.iter().chain(&after).any(|&hit| hit) {
                continue;
            }
        }
        for (role, &n) in f.roles.iter().zip(&f.attnums) {
            for tuple in [old, new] {
                // SAFETY: a row of the trigger's table.
                let Some(value) = (unsafe { text_value(tuple, desc, n) }) else { continue };
                match role {
                    Role::Lookup { via_column, .. } => {
                        push(source, Touch::Lookup { via_column: via_column.clone(), value })
                    }
                    _ => push(source, Touch::Contact { key: value, all: true }),
                }
            }
        }
    }
    // Nothing seen: the statement trigger has nothing to do.
    if !seen.is_empty() {
        UPDATED.with(|u| u.borrow_mut().entry(table).or_default().extend(seen));
    }
}

/// Contacts pointing at lookup rows whose target key is in `values`.
fn contacts_via(reg: &Registered, via_column: &str, values: &[String]) -> Vec<String> {
    let sql = format!(
        "SELECT s.{}::pg_catalog.text FROM {} s WHERE s.{}::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1)",
        ident(&reg.key),
        reg.source,
        ident(via_column)
    );
    Spi::connect_mut(|_| {
        run_kept(&sql, &[pg_sys::TEXTARRAYOID], &[text_array(values)]);
        result_column::<String>(1).into_iter().flatten().collect()
    })
}

/// Recomputes `targets` of the feed for the contacts `keys` (None: all),
/// adding NOTIFY entries to `summary`.
fn maintain_feed(f: &Feed, targets: &[&Target], keys: Option<&[String]>, summary: &mut Vec<String>) {
    if targets.is_empty() {
        return;
    }
    if let Some(keys) = keys {
        if keys.is_empty() {
            return;
        }
        lock_contacts(&f.reg, keys);
    }
    let rows = keys.map_or(Rows::All, Rows::Keys);
    summary.extend(apply(targets, &f.reg, rows).1);
}

/// Maintains what rows of a relation ask for (`relevant`): the targets that
/// inserted rows decide (`Relevant::decided`) as flips, for contacts locked
/// under their keys, without a query; the other targets by recompute. A
/// decided target is recomputed too if one of its contacts was not locked
/// that way (gone, given another key, or locked by the statement).
fn maintain_relation(f: &Feed, r: Relevant, generation: u64, summary: &mut Vec<String>) {
    if r.keys.is_empty() || r.targets.is_empty() {
        return;
    }
    let locked = lock_contacts(&f.reg, &r.keys);
    let mut settled: Vec<usize> = r.decided.iter().map(|&(i, _)| i).collect();
    settled.dedup();
    settled.retain(|&i| r.decided.iter().all(|(j, key)| *j != i || locked.binary_search(key).is_ok()));
    let flips: Vec<Flip> = r
        .decided
        .iter()
        .filter(|(i, _)| settled.contains(i))
        .map(|(i, key)| Flip {
            segment: f.targets[*i].id,
            key: key.clone(),
            enter: f.decided[*i] == Some(true),
            generation: Some(generation),
        })
        .collect();
    if !flips.is_empty() {
        let targets: Vec<&Target> = settled.iter().map(|&i| &f.targets[i]).collect();
        apply_flips(f, &targets, &flips.iter().collect::<Vec<_>>(), summary);
    }
    let rest: Vec<&Target> =
        r.targets.into_iter().filter(|t| !settled.iter().any(|&i| f.targets[i].id == t.id)).collect();
    if !rest.is_empty() {
        pinned_search_path(|| summary.extend(apply(&rest, &f.reg, Rows::Keys(&r.keys)).1));
    }
}

/// The UPDATE statement trigger: applies what the row trigger collected.
fn on_update(f: &Feed, pending: &[Pending], summary: &mut Vec<String>) {
    let mut flips = vec![];
    let mut keys = vec![];
    let mut all = false;
    let mut via: HashMap<&str, Vec<String>> = HashMap::new();
    for p in pending.iter().filter(|p| p.source == f.reg.relid) {
        match &p.touch {
            Touch::Flip(flip) => flips.push(flip),
            Touch::Contact { key, all: a } => {
                keys.push(key.clone());
                all |= a;
            }
            Touch::Lookup { via_column, value } => via.entry(via_column).or_default().push(value.clone()),
        }
    }
    if !flips.is_empty() {
        let local: Vec<&Target> = f.local.iter().map(|&i| &f.targets[i]).collect();
        apply_flips(f, &local, &flips, summary);
    }
    if keys.is_empty() && via.is_empty() {
        return;
    }
    pinned_search_path(|| {
        for (via_column, values) in via {
            keys.extend(contacts_via(&f.reg, via_column, &values));
            all = true;
        }
        keys.sort();
        keys.dedup();
        let targets: Vec<&Target> = if all { f.targets.iter().collect() } else { f.others() };
        maintain_feed(f, &targets, Some(&keys), summary);
    });
}

/// The statement triggers behind every registered table.
fn on_statement(trigdata: *mut pg_sys::TriggerData) {
    // SAFETY: called by the trigger manager with valid trigger data.
    let (rel, event) = unsafe { ((*trigdata).tg_relation, (*trigdata).tg_event) };
    let table = unsafe { (*rel).rd_id };
    let op = event & pg_sys::TRIGGER_EVENT_OPMASK;
    let pending = if op == pg_sys::TRIGGER_EVENT_UPDATE {
        // Nothing collected: no read column changed, or no segment flipped.
        let Some(pending) = UPDATED.with(|u| u.borrow_mut().remove(&table)) else { return };
        pending
    } else {
        vec![]
    };
    // Before the feeds, as in `on_row_update`.
    let generation = catalog_generation();
    let feeds = context(rel);
    // Row-local flips run no SQL: the search_path is pinned (which costs
    // more than the flips) only around what does.
    as_owner(|| {
        for f in feeds.iter().filter(|f| !f.targets.is_empty()) {
            let mut summary = vec![];
            match op {
                pg_sys::TRIGGER_EVENT_UPDATE => on_update(f, &pending, &mut summary),
                _ => on_write(trigdata, f, op, generation, &mut summary),
            }
            if !summary.is_empty() {
                pinned_search_path(|| notify(f.reg.relid, summary));
            }
        }
    });
}

/// The statement triggers of INSERT, DELETE and TRUNCATE; `generation`: the
/// catalog generation the feed `f` was read under. What runs SQL runs with
/// the search_path pinned.
fn on_write(trigdata: *mut pg_sys::TriggerData, f: &Feed, op: u32, generation: u64, summary: &mut Vec<String>) {
    let all: Vec<&Target> = f.targets.iter().collect();
    match op {
        // A truncated source left every segment already
        // (segments.forget_contacts); a truncated relation or lookup
        // changes any contact.
        pg_sys::TRIGGER_EVENT_TRUNCATE if f.roles.iter().any(|r| !matches!(r, Role::Source)) => {
            pinned_search_path(|| maintain_feed(f, &all, None, summary))
        }
        pg_sys::TRIGGER_EVENT_TRUNCATE => {}
        // New rows of the source: straight from the transition table.
        pg_sys::TRIGGER_EVENT_INSERT if matches!(f.roles.as_slice(), [Role::Source]) => {
            pinned_search_path(|| summary.extend(apply(&all, &f.reg, Rows::New(trigdata)).1))
        }
        // Rows of a relation: only their contacts, for the segments whose
        // filters they pass.
        pg_sys::TRIGGER_EVENT_INSERT | pg_sys::TRIGGER_EVENT_DELETE if f.relevance.is_some() => {
            maintain_relation(f, relevant(trigdata, f, op == pg_sys::TRIGGER_EVENT_INSERT), generation, summary)
        }
        _ => pinned_search_path(|| {
            let insert = op == pg_sys::TRIGGER_EVENT_INSERT;
            let mut keys: Vec<String> = vec![];
            for role in &f.roles {
                keys.extend(match role {
                    // Contacts deleted from the source left every
                    // segment already (segments.forget_contacts).
                    Role::Source if !insert => continue,
                    _ => touched(trigdata, &f.reg, role, if insert { "new_rows" } else { "old_rows" }),
                });
            }
            keys.sort();
            keys.dedup();
            maintain_feed(f, &all, Some(&keys), summary);
        }),
    }
}

/// `segments.maintain()`: a V1 C function, because SPI sees a statement's
/// transition tables only once its TriggerData is registered, which pgrx's
/// trigger wrapper does not expose.
#[no_mangle]
pub extern "C" fn pg_finfo_segments_maintain() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// # Safety
/// Called by PostgreSQL's function manager as a trigger.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn segments_maintain(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let context = unsafe { (*fcinfo).context };
    let is_trigger = !context.is_null() && unsafe { (*context).type_ } == pg_sys::NodeTag::T_TriggerData;
    if !is_trigger {
        fail(PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "segments.maintain() is a trigger".into());
    }
    let trigdata = context as *mut pg_sys::TriggerData;
    // SAFETY: checked above that this is trigger data.
    if unsafe { (*trigdata).tg_event } & pg_sys::TRIGGER_EVENT_ROW != 0 {
        on_row_update(trigdata);
    } else {
        on_statement(trigdata);
    }
    pg_sys::Datum::from(0usize)
}

extension_sql!(
    r#"
CREATE FUNCTION segments.maintain() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'segments_maintain';
REVOKE ALL ON FUNCTION segments.maintain() FROM PUBLIC;
"#,
    name = "maintain_trigger",
    requires = ["bootstrap"]
);

fn has_trigger(table: pg_sys::Oid, name: &str) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid OPERATOR(pg_catalog.=) $1
                          AND tgname OPERATOR(pg_catalog.=) $2)",
        &[table.into(), name.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// Installs the maintenance triggers on a registered table, once.
pub fn install_triggers(table: pg_sys::Oid) {
    if has_trigger(table, "segments_maintain_insert") {
        return;
    }
    let t = catalog::qualified_name(table);
    Spi::run(&format!(
        "CREATE TRIGGER segments_maintain_insert AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows
             FOR EACH STATEMENT EXECUTE FUNCTION segments.maintain();
         CREATE TRIGGER segments_maintain_delete AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows
             FOR EACH STATEMENT EXECUTE FUNCTION segments.maintain();
         CREATE TRIGGER segments_maintain_truncate AFTER TRUNCATE ON {t}
             FOR EACH STATEMENT EXECUTE FUNCTION segments.maintain();"
    ))
    .expect("installing maintenance triggers");
}

/// (Re)creates the triggers that notice UPDATEs of `table` worth
/// maintenance. They fire only for UPDATEs that name a column that
/// identifies a row's contact or that an active segment reads (`UPDATE OF`,
/// a test of the statement's target list: no expression, nothing parsed per
/// statement); the row trigger then compares those columns itself. A
/// `BEFORE UPDATE` row trigger may change columns an UPDATE does not name:
/// while the table has one, they fire for every UPDATE (the event trigger
/// `segments_before_triggers` calls this when one is created). No active
/// segment reads the table: no UPDATE trigger at all.
pub fn sync_update_trigger(table: pg_sys::Oid) {
    let columns = watched_columns(table, None);
    let t = catalog::qualified_name(table);
    if columns.is_empty() {
        drop_triggers(table, &["segments_maintain_update_row", "segments_maintain_update"]);
        return;
    }
    let before = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                         WHERE t.tgrelid OPERATOR(pg_catalog.=) $1 AND NOT t.tgisinternal
                           AND t.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) $2 OPERATOR(pg_catalog.=) $2)",
        &[table.into(), BEFORE_UPDATE_ROW.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(true);
    let of = match before {
        true => String::new(),
        false => format!(" OF {}", columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")),
    };
    // The statement trigger applies what the row trigger collected.
    Spi::run(&format!(
        "CREATE OR REPLACE TRIGGER segments_maintain_update AFTER UPDATE{of} ON {t}
             FOR EACH STATEMENT EXECUTE FUNCTION segments.maintain();
         CREATE OR REPLACE TRIGGER segments_maintain_update_row AFTER UPDATE{of} ON {t}
             FOR EACH ROW EXECUTE FUNCTION segments.maintain()"
    ))
    .expect("installing the UPDATE triggers");
}

/// `pg_trigger.tgtype` of a BEFORE UPDATE row trigger: ROW | BEFORE | UPDATE.
const BEFORE_UPDATE_ROW: i32 = 1 | 2 | 16;

/// The columns of `table` whose change matters to maintenance: those that
/// identify a row's contact (source key, relation contact column, lookup
/// target key) and those active segments read; for `source` only, if given.
/// None when no active segment reads the table.
fn watched_columns(table: pg_sys::Oid, source: Option<pg_sys::Oid>) -> Vec<String> {
    Spi::get_one_with_args::<Vec<String>>(
        "WITH reads AS (
             SELECT r.columns FROM segments.segment_read r
               JOIN segments.segment_def d ON d.id OPERATOR(pg_catalog.=) r.segment_id
              WHERE r.relid OPERATOR(pg_catalog.=) $1 AND d.kind OPERATOR(pg_catalog.=) 'active'
                AND ($2::pg_catalog.oid IS NULL OR d.source OPERATOR(pg_catalog.=) $2))
         SELECT COALESCE(pg_catalog.array_agg(DISTINCT c ORDER BY c), '{}') FROM (
             SELECT key_column::pg_catalog.text AS c FROM segments.source
              WHERE relid OPERATOR(pg_catalog.=) $1 AND ($2 IS NULL OR relid OPERATOR(pg_catalog.=) $2)
             UNION SELECT contact_column::pg_catalog.text FROM segments.relation
              WHERE relation OPERATOR(pg_catalog.=) $1 AND ($2 IS NULL OR source OPERATOR(pg_catalog.=) $2)
             UNION SELECT target_key::pg_catalog.text FROM segments.lookup
              WHERE target OPERATOR(pg_catalog.=) $1 AND ($2 IS NULL OR source OPERATOR(pg_catalog.=) $2)
             UNION SELECT pg_catalog.unnest(columns) FROM reads) x
          WHERE EXISTS (SELECT FROM reads)",
        &[table.into(), source.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// `segments._sync_update_trigger(oid)`, for the event trigger below.
#[pg_extern(name = "_sync_update_trigger")]
#[search_path(pg_catalog, pg_temp)]
fn sync_update_trigger_sql(table: pg_sys::Oid) {
    as_owner(|| sync_update_trigger(table));
}

extension_sql!(
    r#"
REVOKE ALL ON FUNCTION segments._sync_update_trigger(oid) FROM PUBLIC;
-- A BEFORE UPDATE row trigger created on a table with maintenance triggers:
-- from now on they fire for every UPDATE (see sync_update_trigger). Runs as
-- the extension owner, who owns segments.maintain().
CREATE FUNCTION segments.before_trigger_created() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM segments._sync_update_trigger(t.tgrelid)
       FROM pg_catalog.pg_event_trigger_ddl_commands() c
       JOIN pg_catalog.pg_trigger t ON t.oid OPERATOR(pg_catalog.=) c.objid
      WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass
        AND t.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 19 OPERATOR(pg_catalog.=) 19
        AND EXISTS (SELECT FROM pg_catalog.pg_trigger m
                     WHERE m.tgrelid OPERATOR(pg_catalog.=) t.tgrelid
                       AND m.tgname OPERATOR(pg_catalog.=) 'segments_maintain_update_row');
END $$;
REVOKE ALL ON FUNCTION segments.before_trigger_created() FROM PUBLIC;
CREATE EVENT TRIGGER segments_before_triggers ON ddl_command_end WHEN TAG IN ('CREATE TRIGGER')
    EXECUTE FUNCTION segments.before_trigger_created();
"#,
    name = "before_triggers",
    requires = [sync_update_trigger_sql, "maintain_trigger"]
);

/// Re-syncs the UPDATE row triggers of every table `source` is registered with.
pub fn sync_source(source: pg_sys::Oid) {
    for t in catalog::registered_tables(source) {
        sync_update_trigger(t);
    }
}

/// Removes the maintenance triggers from a table no registration uses any more.
pub fn remove_unused_triggers(table: pg_sys::Oid) {
    let used = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM segments.source WHERE relid OPERATOR(pg_catalog.=) $1)
             OR EXISTS (SELECT FROM segments.relation WHERE relation OPERATOR(pg_catalog.=) $1)
             OR EXISTS (SELECT FROM segments.lookup WHERE target OPERATOR(pg_catalog.=) $1)",
        &[table.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(true);
    if used {
        // Still registered for another source: its segments decide.
        sync_update_trigger(table);
        return;
    }
    drop_triggers(
        table,
        &[
            "segments_maintain_insert",
            "segments_maintain_update",
            "segments_maintain_update_row",
            "segments_maintain_delete",
            "segments_maintain_truncate",
        ],
    );
}

/// Drops those of the triggers `names` that `table` has, each checked first:
/// DROP TRIGGER IF EXISTS would tell the caller about a trigger that was
/// never there (the UPDATE triggers exist only while an active segment reads
/// the table).
fn drop_triggers(table: pg_sys::Oid, names: &[&str]) {
    let t = catalog::qualified_name(table);
    for name in names {
        if has_trigger(table, name) {
            Spi::run(&format!("DROP TRIGGER {name} ON {t}")).expect("removing a maintenance trigger");
        }
    }
}

/// Records the tables and columns a segment reads (its source always).
pub fn set_reads(id: i64, source: pg_sys::Oid, columns: &[(String, String, String)]) {
    Spi::run_with_args("DELETE FROM segments.segment_read WHERE segment_id OPERATOR(pg_catalog.=) $1", &[id.into()])
        .expect("clearing reads");
    let tables: Vec<String> = columns.iter().map(|(s, t, _)| crate::codegen::qualified(s, t)).collect();
    let names: Vec<String> = columns.iter().map(|(_, _, c)| c.clone()).collect();
    Spi::run_with_args(
        "INSERT INTO segments.segment_read (segment_id, relid, columns)
         SELECT $1, r, COALESCE(pg_catalog.array_agg(DISTINCT c) FILTER (WHERE c IS NOT NULL), '{}')
           FROM (SELECT $2::pg_catalog.oid::pg_catalog.regclass AS r, NULL::pg_catalog.text AS c
                 UNION ALL
                 SELECT t::pg_catalog.regclass, c
                   FROM ROWS FROM (pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.text[])) AS x(t, c)) x
          GROUP BY r",
        &[id.into(), source.into(), tables.into(), names.into()],
    )
    .expect("recording reads");
}
