//! Member counts: every read and write of `segments.count_delta` from Rust.
//!
//! A segment's count is the sum of its delta rows (SPEC: `member_count`
//! must not scan the membership, and writers on different contacts must not
//! wait for each other). Statements append a delta row per segment they
//! change (`counted`); the write path without a statement adds to this
//! backend's own row of each segment (`add`); `fold` sums a segment's rows
//! into one now and then (`fold_sometimes`). The PL/pgSQL trigger
//! `segments.forget_contacts()` (sql/bootstrap.sql) appends the deltas of
//! deleted and truncated contacts the same way.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pgrx::pg_sys;

use super::cache;
use super::liveness::lock_live;
use crate::pg::heap::{statement, Statement};
use crate::pg::{backend, spi};

/// The CTE `counted`, appending the delta rows that `select` yields
/// (segment_id, delta).
pub fn counted(select: &str) -> String {
    format!("counted AS (INSERT INTO segments.count_delta (segment_id, delta) {select})")
}

/// Member count of segment `id`; as the owner (PUBLIC may not read the deltas).
pub fn count(id: i64) -> i64 {
    spi::get::<i64>(
        "SELECT COALESCE(pg_catalog.sum(delta), 0)::pg_catalog.int8 FROM segments.count_delta WHERE segment_id OPERATOR(pg_catalog.=) $1",
        &[id.into()],
    )
    .unwrap_or(0)
}

/// Sets the count of segment `id` (SQL) to what the SQL `count` returns, unless
/// the segment was dropped meanwhile (its row is locked by the caller's
/// UPDATE of it, or found gone).
pub fn reset(id: &str, count: &str) -> String {
    format!(
        "DELETE FROM segments.count_delta WHERE segment_id OPERATOR(pg_catalog.=) {id};
         INSERT INTO segments.count_delta (segment_id, delta) SELECT {id}, ({count})
          WHERE EXISTS (SELECT FROM segments.segment_def WHERE id OPERATOR(pg_catalog.=) {id})"
    )
}

/// Deletes the deltas of the segments `any` (an `ANY (…)` of ids) under
/// the latest snapshot; inside an SPI connection (`liveness::forget_segments`).
pub fn forget_latest(any: &str) {
    spi::run_latest(&format!("DELETE FROM segments.count_delta WHERE segment_id OPERATOR(pg_catalog.=) {any}"));
}

/// Adds count deltas (segment, delta) to this backend's own delta row of
/// each segment, updated in place (a HOT update: no index entry, nothing to
/// fold later); a new row where it has none. Only this backend writes its
/// rows, so no writer waits for another: a row it cannot update at once
/// (folded or being folded by another transaction, or held by a transaction
/// it prepared) is left alone and a new one appended, as before this row
/// existed. Appending a row per segment and transaction, the way statements
/// count, cost single-row UPDATEs more (bench/findings.md).
pub fn add(st: &Statement, counts: &[(i64, i64)]) {
    if counts.is_empty() {
        return;
    }
    let table = st.open(count_delta());
    let (segment_att, delta_att) = (table.attnum("segment_id"), table.attnum("delta"));
    for &(id, delta) in counts {
        let updated = own_row(id).and_then(|tid| table.add_to(tid, (segment_att, id), delta_att, delta));
        let tid = updated.unwrap_or_else(|| {
            table.insert(&[(segment_att, pg_sys::Datum::from(id)), (delta_att, pg_sys::Datum::from(delta))])
        });
        OWN_ROWS.with(|o| o.borrow_mut().insert(id, tid));
    }
}

thread_local! {
    /// Where the latest version of this backend's own delta row of each
    /// segment is, in the count table `count_delta` returns (forgotten with
    /// it). A position is only a hint: `TableWriter::add_to` checks that it holds
    /// a visible row of the segment before updating it.
    static OWN_ROWS: RefCell<HashMap<i64, pg_sys::ItemPointerData>> = RefCell::new(HashMap::new());
    /// The oid of `segments.count_delta`, with the oid of the segment
    /// catalog it was looked up with: a new catalog (the extension dropped
    /// and created again) means a new table.
    static COUNT_DELTA: Cell<(pg_sys::Oid, pg_sys::Oid)> =
        const { Cell::new((pg_sys::Oid::INVALID, pg_sys::Oid::INVALID)) };
    /// How many segment changes this backend made (`fold_sometimes`).
    static WRITES: Cell<u32> = const { Cell::new(0) };
}

fn own_row(segment: i64) -> Option<pg_sys::ItemPointerData> {
    OWN_ROWS.with(|o| o.borrow().get(&segment).copied())
}

/// Forgets this backend's delta rows: after an abort the versions it wrote
/// are dead, after PREPARE TRANSACTION they belong to the prepared
/// transaction, which holds them until it ends, and a new count table
/// (the extension created again) has none of them.
pub fn forget_own_rows() {
    OWN_ROWS.with(|o| o.borrow_mut().clear());
}

/// Table `relid` changed: if it is the count table, it may have been
/// rewritten or truncated (TRUNCATE, VACUUM FULL, CLUSTER give it a new
/// file; VACUUM's truncation of empty pages updates its `relpages`), and a
/// remembered position may lie past its end (reading it failed with
/// XX001): this backend's rows are forgotten. The invalidation reaches a
/// writer before it uses a position: `add` opens the table first, and a
/// table it holds open cannot shrink.
pub fn table_changed(relid: pg_sys::Oid) {
    let (_, known) = COUNT_DELTA.with(Cell::get);
    if relid == pg_sys::Oid::INVALID || relid == known {
        forget_own_rows();
    }
}

/// `segments.count_delta`.
fn count_delta() -> pg_sys::Oid {
    let catalog = cache::segment_def_oid();
    let (known_catalog, known) = COUNT_DELTA.with(Cell::get);
    if known_catalog == catalog && known != pg_sys::Oid::INVALID {
        return known;
    }
    let oid = backend::relation_oid(c"segments", c"count_delta");
    COUNT_DELTA.with(|c| c.set((catalog, oid)));
    forget_own_rows();
    oid
}

/// Folds a segment's count deltas every 64 changes made by this backend:
/// often enough to keep `member_count` an index range of a few rows, rarely
/// enough to cost nothing on the write path.
pub fn fold_sometimes(id: i64) {
    let n = WRITES.with(|w| {
        w.set(w.get().wrapping_add(1));
        w.get()
    });
    if n % 64 == 0 {
        fold(id);
    }
}

/// Folds a segment's count deltas into one row. Rows another transaction
/// holds (folding them) are skipped, as `FOR UPDATE SKIP LOCKED` skips
/// them, so this never waits. The segment is locked first, as by every
/// writer of deltas: a drop_segment waits for the fold, or the fold finds
/// the segment gone and does nothing. The deltas are found by a plain index
/// scan, which marks the index entries of folded (dead) deltas as such:
/// the bitmap scan the planner picks for a statement does not, and then
/// reads every dead delta since the last vacuum on every fold.
pub fn fold(id: i64) {
    statement(|st| {
        if lock_live(st, &[id], None).is_empty() {
            return;
        }
        let table = st.open(count_delta());
        let (segment_att, delta_att) = (table.attnum("segment_id"), table.attnum("delta"));
        let seen = table.rows_where(segment_att, pg_sys::Datum::from(id), delta_att);
        if seen.len() > 1 {
            // A row this cannot delete at once is being (or was) folded
            // by another transaction, or added to by the backend whose
            // own row it is (the newer version holds the sum).
            let taken: Vec<i64> =
                seen.into_iter().filter_map(|(tid, delta)| table.delete_now(tid).then_some(delta)).collect();
            if !taken.is_empty() {
                let sum: i64 = taken.iter().sum();
                table.insert(&[(segment_att, pg_sys::Datum::from(id)), (delta_att, pg_sys::Datum::from(sum))]);
            }
        }
    })
}

