//! Segment liveness: membership tables have no foreign key to the segment
//! catalog, so every writer that adds members locks the segments it adds to
//! against `drop_segment` (or finds them dropped and skips them), and
//! `drop_segment` waits for those writers before it deletes anything.
//! Three forms of one lock: the `live` CTE of statements (`FOR KEY SHARE`
//! of the catalog rows), `lock_live` for writes without a statement, and
//! the heavyweight object lock that `lock_for_drop` takes exclusively.

use std::collections::HashSet;

use pgrx::pg_sys;

use super::cache;
use crate::pg::backend;
use crate::pg::error::{fail, Code};
use crate::pg::heap::{Keys, RowLock, Statement};
use crate::pg::spi;

/// The CTE `live`: the segments among `ids` (a query) that still exist,
/// locked against drop_segment until commit. Every statement that adds
/// members filters them by `LIVE`, which evaluates `live` before the first
/// row is written: a segment dropped meanwhile is thus skipped instead of
/// left with members.
pub fn live(ids: &str) -> String {
    format!(
        "live AS (SELECT d.id FROM segments.segment_def d
                   WHERE d.id IN ({ids}) FOR KEY SHARE OF d)"
    )
}

/// `ANY (…)` of the segment ids in `live`.
pub const LIVE: &str = "ANY (ARRAY(SELECT live.id FROM live))";

/// At most this many segments entered by one statement are locked by their
/// object lock; more take row locks, which need no room in the shared lock
/// table.
const OBJECT_LOCKS: usize = 16;

/// Locks the segments `ids` against drop_segment until commit (in id order)
/// and returns those that still exist.
///
/// Under READ COMMITTED, when the flips were decided under catalog
/// generation `decided`, a few segments take the heavyweight lock of
/// `lock_segment`, which writes nothing: drop_segment takes it exclusively
/// before deleting anything and invalidates the catalog before releasing
/// it, so once it is granted an unchanged generation proves that no segment
/// was dropped since the catalog was read (under a snapshot of this
/// statement or later). Otherwise (the catalog changed, or it was read
/// under a transaction snapshot, which may predate a drop) each segment's
/// row is looked up and locked `FOR KEY SHARE`, as a statement holding them
/// would: a segment dropped meanwhile is skipped, and under REPEATABLE READ
/// one dropped since the snapshot is a serialization failure.
pub fn lock_live(st: &Statement, ids: &[i64], decided: Option<u64>) -> HashSet<i64> {
    if let Some(generation) = decided.filter(|_| ids.len() <= OBJECT_LOCKS && !backend::repeatable_read()) {
        ids.iter().for_each(|&id| lock_segment(id, pg_sys::AccessShareLock));
        backend::accept_invalidations();
        if cache::generation() == generation {
            return ids.iter().copied().collect();
        }
    }
    if ids.is_empty() {
        return HashSet::new();
    }
    let locked = st
        .lock_rows(cache::segment_def_oid(), "id", Keys::Int8(ids), RowLock::KeyShare, false)
        .unwrap_or_else(|| fail(Code::ERRCODE_INTERNAL_ERROR, "segments.segment_def without its primary key".into()));
    // Dropped meanwhile: skipped, as `live` skips it.
    ids.iter().zip(locked).filter(|(_, locked)| *locked).map(|(&id, _)| id).collect()
}

/// Takes the heavyweight lock of segment `id` in `mode`, held until the
/// transaction ends. `pg_locks` shows it as a lock on an object of
/// segments.segment_def.
fn lock_segment(id: i64, mode: u32) {
    backend::lock_object(cache::segment_def_oid(), id, mode);
}

/// Waits for every transaction that flipped contacts into one of the
/// segments `ids` (`lock_live`) and keeps new ones waiting until this one
/// ends: what drop_segment does before deleting the segments.
pub fn lock_for_drop(ids: &[i64]) {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.iter().for_each(|&id| lock_segment(id, pg_sys::AccessExclusiveLock));
}

/// Deletes what dropped segments (`ids`) leave in the tables without a
/// foreign key: their count deltas and, if the table stays, their members.
/// Called once the segments' rows are deleted, which waited for every writer
/// that had locked them (`live`); under the latest snapshot, which also
/// reaches what such writers committed after this transaction's snapshot.
pub fn forget_segments(ids: &[i64], membership: Option<&str>) {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let list = format!("ANY (ARRAY[{}]::pg_catalog.int8[])", list.join(", "));
    pgrx::Spi::connect_mut(|_| {
        if let Some(m) = membership {
            spi::run_latest(&format!("DELETE FROM {m} WHERE segment_id OPERATOR(pg_catalog.=) {list}"));
        }
        super::counts::forget_latest(&list);
    });
}
