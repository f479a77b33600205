//! Recompute: bringing segments to exactly what their predicates select,
//! for given contacts, new rows or every contact, by SQL (set-based
//! statements, or one query listing the flips for a few contacts). Every
//! statement here ends in the same accounting: count deltas
//! (`state::counts`), the change log of tracked segments, and what changed
//! per segment.

use std::collections::HashMap;

use pgrx::prelude::*;
use segments_lang::codegen::ident;

use super::definitions::Target;
use super::flips::{self, Flip};
use super::notify;
use crate::pg::heap::{statement, Keys, RowLock};
use crate::pg::backend;
use crate::pg::error::serialization_failure;
use crate::pg::spi::{first, result_column, run_kept, run_latest_with, text_array, with_transition_tables};
use crate::pg::trigger::Trigger;
use crate::state::registry::Registered;
use crate::state::counts;
use crate::state::liveness::{live, LIVE};
use crate::state::privilege::pinned_search_path;

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
    /// The predicate has no subquery (`Compiled::row_local`).
    pub flat: bool,
}

impl Job {
    fn of(t: &Target, reg: &Registered) -> Job {
        let c = t.compiled(reg);
        Job { id: t.id, predicate: c.predicate.clone(), track: t.track_changes, flat: c.row_local }
    }
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
    New(&'a Trigger<'a>),
}

/// Up to this many contacts, a recompute by contact locks them and reads
/// and writes its flips without starting a statement, which costs more than
/// the work for a few. Many go through the set-based statements, which look
/// each member up once, not twice, and lock the contacts in one index scan
/// (bench/findings.md, sessions 20-21).
pub const FEW_CONTACTS: usize = 64;

/// Brings the `jobs` to exactly what their predicates select, for `rows`:
/// the jobs must not reference one another (one dependency level).
/// `entered_at` is kept for the contacts that stay. Up to `FEW_CONTACTS`
/// contacts, one `SELECT` lists the flips and `flips::write` writes them;
/// otherwise one statement writes the members, the counts and, for tracked
/// segments, the change log. Runs as the owner.
pub fn recompute(jobs: &[Job], reg: &Registered, rows: Rows) -> HashMap<i64, Delta> {
    let key = ident(&reg.key);
    let membership = reg.membership();
    // ` AND <alias>.key = ANY ($1)` when the recompute is for given contacts.
    let in_keys = |alias: &str| match rows {
        Rows::Keys(_) => reg.and_key_in_param(alias),
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
    // Under REPEATABLE READ the members are written under the latest
    // snapshot once the predicates are known to select the same there: the
    // memberships other transactions committed since the snapshot (for these
    // contacts, whose locks they released) are what there is to change.
    let latest = backend::repeatable_read() && !matches!(rows, Rows::All);
    if latest {
        require_unchanged(&want, &types, &args, rows);
    }
    if matches!(rows, Rows::Keys(k) if k.len() <= FEW_CONTACTS) && !latest {
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
        return flips::write(reg, &flips.iter().collect::<Vec<_>>(), &tracked);
    }
    let sql = match rows {
        Rows::New(_) => new_members(&want, &membership, &key, &tracked),
        _ => changed_members(&want, &membership, &key, &ids, &in_keys("m"), &tracked),
    };
    let run = || {
        if latest {
            run_latest_with(&sql, &types, &args);
        } else {
            run_kept(&sql, &types, &args);
        }
        deltas()
    };
    match rows {
        Rows::New(trigger) => with_transition_tables(trigger, run),
        _ => Spi::connect_mut(|_| run()),
    }
}

/// Under REPEATABLE READ the transaction's snapshot misses what transactions
/// that committed since wrote (those it waited for on the contacts' locks,
/// which a lock alone does not report): if the members `want` gives differ
/// under the latest snapshot, the membership it would write is not the one
/// a fresh evaluation gives, and the transaction fails with 40001 instead.
fn require_unchanged(want: &str, types: &[pg_sys::Oid], args: &[pg_sys::Datum], rows: Rows) {
    let sql = format!(
        "SELECT pg_catalog.string_agg(w.segment_id::pg_catalog.text OPERATOR(pg_catalog.||) ':'
                                      OPERATOR(pg_catalog.||) w.k::pg_catalog.text,
                                      ',' ORDER BY w.segment_id, w.k::pg_catalog.text COLLATE pg_catalog.\"C\")
           FROM ({want}) w"
    );
    let both = || {
        run_kept(&sql, types, args);
        let seen = first::<String>(1);
        run_latest_with(&sql, types, args);
        (seen, first::<String>(1))
    };
    let (seen, now) = match rows {
        Rows::New(trigger) => with_transition_tables(trigger, both),
        _ => Spi::connect_mut(|_| both()),
    };
    if seen != now {
        serialization_failure("update of rows that segments read");
    }
}

/// The statement that adds the rows of `want` (segment_id, k), new
/// contacts, to `membership`. They have no memberships yet, to take away or
/// to keep: a plain INSERT (ON CONFLICT costs more), and every row of `want`
/// in a live segment is a member entered. The lock on the segments gained
/// counts their members in the same pass over `want`, so nothing is read
/// back from the INSERT (bench/findings.md has both measurements).
fn new_members(want: &str, membership: &str, key: &str, tracked: &[i64]) -> String {
    let counted = counts::counted("SELECT live.id, live.entered FROM live");
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
              {counted}{log}
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
/// (`flips::write`). `segment_id + 0` as in `changed_members`.
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

/// The end of every statement that changes memberships: given CTEs `added`
/// and `gone` (segment_id, k), writes the count deltas and, for the
/// `tracked` segments, the change log, and returns (segment_id, entered,
/// left) per segment that changed.
fn accounting(tracked: &[i64]) -> String {
    let counted = counts::counted(
        "SELECT segment_id, entered OPERATOR(pg_catalog.-) left_ FROM n
          WHERE entered OPERATOR(pg_catalog.<>) left_",
    );
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
         {counted}{log}
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

/// Recomputes `targets` (in dependency order) for `keys` (None: every
/// contact), one statement per dependency level. Returns how many
/// memberships changed and the NOTIFY entries of the tracked, shared
/// segments that changed.
pub fn by_level(targets: &[&Target], reg: &Registered, rows: Rows) -> (i64, Vec<notify::Entry>) {
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
pub fn account(targets: &[&Target], deltas: &HashMap<i64, Delta>, summary: &mut Vec<notify::Entry>) -> i64 {
    let mut changed = 0;
    // Few of many segments change at a time: their ids, sorted, are cheaper
    // to search than the map is to hash once per target.
    let mut ids: Vec<i64> = deltas.iter().filter(|(_, d)| d.entered != 0 || d.left != 0).map(|(&id, _)| id).collect();
    ids.sort_unstable();
    for t in targets.iter().filter(|t| ids.binary_search(&t.id).is_ok()) {
        let d = deltas[&t.id];
        changed += d.entered + d.left;
        counts::fold_sometimes(t.id);
        if t.track_changes && t.shared {
            summary.push(notify::entry(t, d));
        }
    }
    changed
}

/// Locks the source rows of `keys`, in the order of the key's own type
/// whichever way (the order an index scan of the key, and so most
/// statements, lock rows in), so that two statements touching overlapping
/// contacts cannot deadlock. Taken in its own statement:
/// the recompute that follows gets a snapshot that sees whatever the
/// transaction we waited for committed (READ COMMITTED), and under
/// REPEATABLE READ a concurrent change raises 40001. Returns the keys whose
/// contacts were locked under that very key, sorted: a contact deleted
/// meanwhile took its memberships along; one found under its key may have
/// been given another one by the transaction waited for (the recheck of
/// `heap::Statement::lock_rows`, or the statement's own).
pub fn lock_contacts(reg: &Registered, keys: &[String]) -> Vec<String> {
    // A few contacts through the key's unique index, without the start-up
    // of a statement; many (one index scan for all) or without that index
    // (dropped since registration) by the statement.
    if keys.len() <= FEW_CONTACTS {
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let locked =
            statement(|st| st.lock_rows(reg.relid, &reg.key, Keys::Text(&sorted), RowLock::NoKeyUpdate, true));
        if let Some(locked) = locked {
            return sorted.into_iter().zip(locked).filter(|(_, l)| *l).map(|(k, _)| k.clone()).collect();
        }
    }
    let sql = format!(
        "SELECT s.{k}::pg_catalog.text FROM {} s WHERE true{} ORDER BY s.{k} FOR NO KEY UPDATE OF s",
        reg.source,
        reg.and_key_in_param("s"),
        k = ident(&reg.key)
    );
    let mut locked: Vec<String> = pinned_search_path(|| {
        Spi::connect_mut(|_| {
            run_kept(&sql, &[pg_sys::TEXTARRAYOID], &[text_array(keys)]);
            result_column::<String>(1).into_iter().flatten().collect()
        })
    });
    locked.sort_unstable();
    locked
}

/// Contacts pointing at lookup rows whose target key (of type
/// `target_type`) is one of `values` (text forms), compared as values of
/// that type.
pub fn contacts_via(reg: &Registered, via_column: &str, target_type: &str, values: &[String]) -> Vec<String> {
    let sql = format!(
        "SELECT s.{}::pg_catalog.text FROM {} s
          WHERE s.{} OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::{target_type}[])",
        ident(&reg.key),
        reg.source,
        ident(via_column)
    );
    let args = [text_array(values)];
    Spi::connect_mut(|_| {
        run_kept(&sql, &[pg_sys::TEXTARRAYOID], &args);
        let keys = result_column::<String>(1).into_iter().flatten().collect();
        require_same_contacts(keys, &sql, &[pg_sys::TEXTARRAYOID], &args, "update of lookup rows")
    })
}

/// `keys`, the contacts `sql` gave under the snapshot as pointing at lookup
/// rows this transaction writes. Under REPEATABLE READ, contacts committed
/// since the snapshot that point at the rows (their writers waited for this
/// transaction's lookup rows, `inflight::share_lookups`, or inserted before
/// them) were recomputed against the rows as they were: the transaction
/// cannot bring them up to date, and fails with 40001 when the latest
/// snapshot gives other contacts ("… concurrent {what} that segments
/// read"). Inside an SPI connection.
pub fn require_same_contacts(
    mut keys: Vec<String>,
    sql: &str,
    types: &[pg_sys::Oid],
    args: &[pg_sys::Datum],
    what: &str,
) -> Vec<String> {
    if backend::repeatable_read() {
        keys.sort();
        run_latest_with(sql, types, args);
        let mut now: Vec<String> = result_column::<String>(1).into_iter().flatten().collect();
        now.sort();
        if now != keys {
            serialization_failure(&format!("{what} that segments read"));
        }
    }
    keys
}

/// After the members of segment `id` changed for the contacts `keys` (None:
/// any contact), brings the active segments that reference it up to date,
/// in dependency order, as a write to a table does, and notifies. Runs as
/// the owner with the search_path pinned.
pub fn propagate(id: i64, reg: &Registered, keys: Option<&[String]>) {
    let dependents = super::definitions::dependents(id);
    if dependents.is_empty() || keys.is_some_and(|k| k.is_empty()) {
        return;
    }
    let targets: Vec<&Target> = dependents.iter().collect();
    let rows = match keys {
        Some(keys) => {
            lock_contacts(reg, keys);
            Rows::Keys(keys)
        }
        None => Rows::All,
    };
    let (_, summary) = by_level(&targets, reg, rows);
    super::notify::notify(reg.relid, summary);
}
