//! Membership flips and count folds, written without a statement.
//!
//! A single-row UPDATE that moves a contact across the boundary of row-local
//! segments changes a membership row or two and a count delta or two.
//! Through SQL that took one statement whose executor start-up and shutdown
//! cost more than the writes (measured with 100 segments: ~220 µs per
//! UPDATE, against ~60 µs here). The same rows are written here with the
//! executor's own routines, the way `INSERT … ON CONFLICT DO NOTHING`,
//! `DELETE` and `SELECT … FOR KEY SHARE` write and lock them, with their
//! semantics:
//!
//! - a segment gaining members is locked `FOR KEY SHARE` first, and skipped
//!   if it was dropped meanwhile (see `maintain::live`);
//! - a member that is already there (a concurrent writer won) is not
//!   inserted twice, nor counted (`Table::insert_if_absent`);
//! - a member already gone is not counted; under REPEATABLE READ a segment
//!   or member changed since the snapshot is a serialization failure;
//! - no trigger fires on the membership and count tables (they have none of
//!   their own; README, "Active segments").
//!
//! The change log of tracked segments is written by a statement
//! (`maintain::apply_flips`).

use std::collections::{HashMap, HashSet};
use std::ffi::CString;

use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;

use crate::api::fail;
use crate::maintain::Delta;

/// A contact entering (or leaving) a segment.
pub struct Flip {
    pub segment: i64,
    /// The contact's key, in its text form.
    pub key: String,
    pub enter: bool,
    /// The catalog generation it was decided under
    /// (`maintain::catalog_generation`); None when the segments it names may
    /// have been read from the catalog before that generation was taken (a
    /// recompute by contact): its segment is then looked up and locked as a
    /// row (`lock_live`).
    pub generation: Option<u64>,
}

/// Runs `work` as a statement of its own would run: under a fresh snapshot
/// (READ COMMITTED) that sees what this transaction wrote so far, with an
/// executor state whose memory holds every allocation; what it wrote is
/// visible to the statements after it.
fn as_statement<R>(work: impl FnOnce(*mut pg_sys::EState) -> R) -> R {
    // SAFETY: inside a transaction; the snapshot pushed here is popped and
    // the executor state freed here, or both with the (sub)transaction on
    // error.
    unsafe {
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        pg_sys::CommandCounterIncrement();
        pg_sys::UpdateActiveSnapshotCommandId();
        let estate = pg_sys::CreateExecutorState();
        let old = pg_sys::MemoryContextSwitchTo((*estate).es_query_cxt);
        (*estate).es_snapshot = pg_sys::GetActiveSnapshot();
        (*estate).es_output_cid = pg_sys::GetCurrentCommandId(true);
        let result = work(estate);
        pg_sys::MemoryContextSwitchTo(old);
        pg_sys::FreeExecutorState(estate);
        pg_sys::CommandCounterIncrement();
        pg_sys::PopActiveSnapshot();
        result
    }
}

/// Applies `flips` to the membership table `membership` (key column `key`)
/// and adds the count deltas (`add_counts`).
/// Returns how many members entered and left each segment, and which flips
/// took effect (for the change log).
pub fn apply_flips(
    membership: pg_sys::Oid,
    key: &str,
    flips: &[&Flip],
) -> (HashMap<i64, Delta>, Vec<bool>) {
    as_statement(|estate| {
        let mut entering: Vec<i64> = flips.iter().filter(|f| f.enter).map(|f| f.segment).collect();
        entering.sort_unstable();
        entering.dedup();
        // None as soon as one flip was decided without a generation.
        let decided = flips.iter().map(|f| f.generation).min().flatten();
        // SAFETY: relations opened and closed here, rows of their own types.
        unsafe {
            let live = lock_live(&entering, estate, decided);
            let table = Table::open(membership);
            let (segment_att, key_att, entered_att) =
                (table.attnum("segment_id"), table.attnum(key), table.attnum("entered_at"));
            let input = KeyInput::new(table.rel, key_att);
            let now = pg_sys::GetCurrentTransactionStartTimestamp();
            let mut deltas: HashMap<i64, Delta> = HashMap::new();
            let mut done = Vec::with_capacity(flips.len());
            for f in flips {
                let applied = if f.enter && !live.contains(&f.segment) {
                    false
                } else {
                    let values = [
                        (segment_att, pg_sys::Datum::from(f.segment)),
                        (key_att, input.datum(&f.key)),
                        (entered_att, pg_sys::Datum::from(now)),
                    ];
                    if f.enter {
                        table.insert_if_absent(&values, estate)
                    } else {
                        table.delete(&values[..2], estate)
                    }
                };
                if applied {
                    let d = deltas.entry(f.segment).or_default();
                    if f.enter {
                        d.entered += 1;
                    } else {
                        d.left += 1;
                    }
                }
                done.push(applied);
                // What the index checks evaluated for this row.
                let per_tuple = (*estate).es_per_tuple_exprcontext;
                if !per_tuple.is_null() {
                    pg_sys::MemoryContextReset((*per_tuple).ecxt_per_tuple_memory);
                }
            }
            table.close();
            let mut counts: Vec<(i64, i64)> =
                deltas.iter().filter(|(_, d)| d.entered != d.left).map(|(&id, d)| (id, d.entered - d.left)).collect();
            counts.sort_unstable();
            add_counts(&counts, estate);
            (deltas, done)
        }
    })
}

/// Adds count deltas (segment, delta) to this backend's own delta row of
/// each segment, updated in place (a HOT update: no index entry, nothing to
/// fold later); a new row where it has none. Only this backend writes its
/// rows, so no writer waits for another: a row it cannot update at once
/// (folded or being folded by another transaction, or held by a transaction
/// it prepared) is left alone and a new one appended, as before this row
/// existed. Appending a row per segment and transaction, the way bulk
/// statements count, cost a 100-segment single-row UPDATE ~10% of its tps in
/// inserts and their folds.
///
/// # Safety
/// Inside `as_statement`.
unsafe fn add_counts(counts: &[(i64, i64)], estate: *mut pg_sys::EState) {
    if counts.is_empty() {
        return;
    }
    unsafe {
        let table = Table::open(count_delta());
        let (segment_att, delta_att) = (table.attnum("segment_id"), table.attnum("delta"));
        for &(id, delta) in counts {
            let updated = own_count_row(id).and_then(|tid| table.add_to(tid, (segment_att, id), delta_att, delta, estate));
            let tid = updated.unwrap_or_else(|| {
                table.insert(&[(segment_att, pg_sys::Datum::from(id)), (delta_att, pg_sys::Datum::from(delta))], estate);
                (*table.slot).tts_tid
            });
            OWN_COUNTS.with(|o| o.borrow_mut().insert(id, tid));
        }
        table.close();
    }
}

thread_local! {
    /// Where the latest version of this backend's own delta row of each
    /// segment is, in the count table `count_delta` returns (forgotten with
    /// it). A position is only a hint: `Table::add_to` checks that it holds
    /// a visible row of the segment before updating it.
    static OWN_COUNTS: std::cell::RefCell<HashMap<i64, pg_sys::ItemPointerData>> =
        std::cell::RefCell::new(HashMap::new());
}

fn own_count_row(segment: i64) -> Option<pg_sys::ItemPointerData> {
    OWN_COUNTS.with(|o| o.borrow().get(&segment).copied())
}

/// Forgets this backend's delta rows: after an abort the versions it wrote
/// are dead, after PREPARE TRANSACTION they belong to the prepared
/// transaction, which holds them until it ends, and a new count table
/// (the extension created again) has none of them.
pub fn forget_count_rows() {
    OWN_COUNTS.with(|o| o.borrow_mut().clear());
}

/// Folds a segment's count deltas into one row. Rows another transaction
/// holds (folding them) are skipped, as `FOR UPDATE SKIP LOCKED` skips
/// them, so this never waits. The segment is locked first, as by every
/// writer of deltas: a drop_segment waits for the fold, or the fold finds
/// the segment gone and does nothing. The deltas are found by a plain index
/// scan, which marks the index entries of folded (dead) deltas as such:
/// the bitmap scan the planner picks for a statement does not, and then
/// reads every dead delta since the last vacuum on every fold.
pub fn fold_count(id: i64) {
    as_statement(|estate| {
        // SAFETY: relations opened and closed here, rows of their own types.
        unsafe {
            if lock_live(&[id], estate, None).is_empty() {
                return;
            }
            let table = Table::open(count_delta());
            let (segment_att, delta_att) = (table.attnum("segment_id"), table.attnum("delta"));
            let Some(index) = table.index(|index| (*(*index).rd_index).indkey.values.as_slice(1)[0] == segment_att) else {
                fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "segments.count_delta without its index".into())
            };
            let mut seen = vec![];
            let found = table.found;
            let scan = scan(table.rel, index, &[(segment_att, pg_sys::Datum::from(id))], (*estate).es_snapshot);
            while pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, found) {
                pg_sys::slot_getsomeattrs_int(found, delta_att as i32);
                seen.push(((*found).tts_tid, (*(*found).tts_values.add(delta_att as usize - 1)).value() as i64));
            }
            pg_sys::index_endscan(scan);
            if seen.len() > 1 {
                // A row this cannot delete at once is being (or was) folded
                // by another transaction, or added to by the backend whose
                // own row it is (the newer version holds the sum).
                let taken: Vec<i64> = seen
                    .into_iter()
                    .filter_map(|(mut tid, delta)| {
                        (table.delete_tid(&mut tid, estate, false) == pg_sys::TM_Result::TM_Ok).then_some(delta)
                    })
                    .collect();
                if !taken.is_empty() {
                    let sum: i64 = taken.iter().sum();
                    table.insert(&[(segment_att, pg_sys::Datum::from(id)), (delta_att, pg_sys::Datum::from(sum))], estate);
                }
            }
            table.close();
        }
    })
}

thread_local! {
    /// The oid of `segments.count_delta`, with the oid of the segment
    /// catalog it was looked up with: a new catalog (the extension dropped
    /// and created again) means a new table.
    static COUNT_DELTA: std::cell::Cell<(pg_sys::Oid, pg_sys::Oid)> =
        const { std::cell::Cell::new((pg_sys::Oid::INVALID, pg_sys::Oid::INVALID)) };
}

/// `segments.count_delta`.
fn count_delta() -> pg_sys::Oid {
    let catalog = crate::maintain::catalog_oid();
    let (known_catalog, known) = COUNT_DELTA.with(|c| c.get());
    if known_catalog == catalog && known != pg_sys::Oid::INVALID {
        return known;
    }
    // SAFETY: catalog lookups by name, inside a transaction.
    let oid = unsafe {
        pg_sys::get_relname_relid(c"count_delta".as_ptr(), pg_sys::get_namespace_oid(c"segments".as_ptr(), false))
    };
    COUNT_DELTA.with(|c| c.set((catalog, oid)));
    forget_count_rows();
    oid
}

pub fn repeatable_read() -> bool {
    // SAFETY: reads a backend-local setting.
    unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 }
}

pub fn serialization_failure(what: &str) -> ! {
    fail(PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE, format!("could not serialize access due to concurrent {what}"))
}

/// At most this many segments entered by one statement are locked by
/// `lock_segment`; more take row locks, which need no room in the shared
/// lock table.
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
///
/// # Safety
/// Inside `as_statement`.
unsafe fn lock_live(ids: &[i64], estate: *mut pg_sys::EState, decided: Option<u64>) -> HashSet<i64> {
    if let Some(generation) = decided.filter(|_| ids.len() <= OBJECT_LOCKS && !repeatable_read()) {
        ids.iter().for_each(|&id| lock_segment(id, pg_sys::AccessShareLock));
        // SAFETY: plain call, inside a transaction.
        unsafe { pg_sys::AcceptInvalidationMessages() };
        if crate::maintain::catalog_generation() == generation {
            return ids.iter().copied().collect();
        }
    }
    let mut live = HashSet::new();
    if ids.is_empty() {
        return live;
    }
    unsafe {
        let rel = pg_sys::table_open(crate::maintain::catalog_oid(), pg_sys::RowShareLock as i32);
        let index = pg_sys::index_open(pg_sys::RelationGetPrimaryKeyIndex(rel), pg_sys::AccessShareLock as i32);
        let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
        let id_att = attnum((*rel).rd_att, "id");
        for &id in ids {
            // Dropped meanwhile: skipped, as `maintain::live` skips it.
            if lock_found(rel, index, &[(id_att, pg_sys::Datum::from(id))], slot, estate, pg_sys::LockTupleMode::LockTupleKeyShare) {
                live.insert(id);
            }
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::index_close(index, pg_sys::NoLock as i32);
        pg_sys::table_close(rel, pg_sys::NoLock as i32);
    }
    live
}

/// Takes the heavyweight lock of segment `id` in `mode`, held until the
/// transaction ends. `pg_locks` shows it as a lock on an object of
/// segments.segment_def.
fn lock_segment(id: i64, mode: u32) {
    // SAFETY: a lock tag built as SET_LOCKTAG_OBJECT builds it (ids above
    // 2^48 share a tag with others: more waiting, never less).
    unsafe {
        let mut tag = pg_sys::LOCKTAG {
            locktag_field1: pg_sys::MyDatabaseId.to_u32(),
            locktag_field2: crate::maintain::catalog_oid().to_u32(),
            locktag_field3: id as u32,
            locktag_field4: (id >> 32) as u16,
            locktag_type: pg_sys::LockTagType::LOCKTAG_OBJECT as u8,
            locktag_lockmethodid: pg_sys::DEFAULT_LOCKMETHOD as u8,
        };
        pg_sys::LockAcquire(&mut tag, mode as i32, false, false);
    }
}

/// Waits for every transaction that flipped contacts into one of the
/// segments `ids` (`lock_live`) and keeps new ones waiting until this one
/// ends: what drop_segment does before deleting the segments.
pub fn lock_for_drop(ids: &[i64]) {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.iter().for_each(|&id| lock_segment(id, pg_sys::AccessExclusiveLock));
}

/// Locks the rows of the contacts `keys` (the key column `key`'s text
/// forms) of the source table `source` as `SELECT … FOR NO KEY UPDATE`
/// does, in the byte order of their text forms (as the statement of
/// `maintain::lock_contacts`), through an index of the key column: a contact deleted meanwhile is skipped, and under REPEATABLE
/// READ one changed since the snapshot is a serialization failure. Run as
/// a statement of its own (`as_statement`): what follows sees what the
/// transactions it waited for committed. Returns the keys whose contacts
/// were locked with that key (sorted): a contact found under its key may
/// have been given another one by the transaction it waited for. None,
/// locking nothing, when the source has no such index (registration
/// requires one, but it can be dropped since): rows are then locked by a
/// statement (`maintain::lock_contacts`).
pub fn lock_contacts(source: pg_sys::Oid, key: &str, keys: &[String]) -> Option<Vec<String>> {
    let mut keys: Vec<&String> = keys.iter().collect();
    keys.sort_unstable();
    keys.dedup();
    as_statement(|estate| {
        // SAFETY: relations opened and closed here, rows of their own types.
        unsafe {
            let rel = pg_sys::table_open(source, pg_sys::RowShareLock as i32);
            let key_att = attnum((*rel).rd_att, key);
            let Some(index) = key_index(rel, key_att) else {
                pg_sys::table_close(rel, pg_sys::NoLock as i32);
                return None;
            };
            let input = KeyInput::new(rel, key_att);
            let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
            let mut locked = Vec::with_capacity(keys.len());
            for k in keys {
                let value = input.datum(k);
                // A contact deleted meanwhile took its memberships along.
                if lock_found(rel, index, &[(key_att, value)], slot, estate, pg_sys::LockTupleMode::LockTupleNoKeyExclusive)
                    && holds_key(slot, key_att, index, value)
                {
                    locked.push(k.clone());
                }
            }
            pg_sys::ExecDropSingleTupleTableSlot(slot);
            pg_sys::index_close(index, pg_sys::NoLock as i32);
            pg_sys::table_close(rel, pg_sys::NoLock as i32);
            Some(locked)
        }
    })
}

/// The btree support function that orders an index column's values.
const BTORDER_PROC: u16 = 1;

/// Whether the row in `slot` holds `value` in column `att`, by the order of
/// `index`, a btree on that column alone: what a statement's recheck of its
/// condition on the row version it locked would say.
///
/// # Safety
/// `slot` holds a row of the table `index` belongs to; `value` is of the
/// index's input type.
unsafe fn holds_key(slot: *mut pg_sys::TupleTableSlot, att: i16, index: pg_sys::Relation, value: pg_sys::Datum) -> bool {
    unsafe {
        if ((*slot).tts_nvalid as i16) < att {
            pg_sys::slot_getsomeattrs_int(slot, att as i32);
        }
        if *(*slot).tts_isnull.add(att as usize - 1) {
            return false;
        }
        let stored = *(*slot).tts_values.add(att as usize - 1);
        let order = pg_sys::index_getprocinfo(index, 1, BTORDER_PROC);
        pg_sys::FunctionCall2Coll(order, *(*index).rd_indcollation, stored, value).value() as i32 == 0
    }
}

/// A valid unique btree index of `rel` on column `att` alone, without a
/// predicate, opened.
///
/// # Safety
/// `rel` is an open table.
unsafe fn key_index(rel: pg_sys::Relation, att: i16) -> Option<pg_sys::Relation> {
    unsafe {
        let list = pg_sys::RelationGetIndexList(rel);
        let n = if list.is_null() { 0 } else { (*list).length as usize };
        let mut found = None;
        for i in 0..n {
            let index = pg_sys::index_open((*(*list).elements.add(i)).oid_value, pg_sys::AccessShareLock as i32);
            let form = (*index).rd_index;
            let usable = (*(*index).rd_rel).relam == pg_sys::BTREE_AM_OID
                && (*form).indisunique
                && (*form).indisvalid
                && (*form).indnkeyatts == 1
                && *(*form).indkey.values.as_ptr() == att
                && pg_sys::heap_attisnull((*index).rd_indextuple, pg_sys::Anum_pg_index_indpred as i32, std::ptr::null_mut());
            if usable {
                found = Some(index);
                break;
            }
            pg_sys::index_close(index, pg_sys::AccessShareLock as i32);
        }
        pg_sys::list_free(list);
        found
    }
}

/// Locks in `mode`, waiting, the row that the unique `index` finds for
/// `columns`, as `SELECT … FOR …` does, leaving it in `slot`: true if it is
/// locked (or modified by this transaction: as good), false if there is
/// none or it is gone meanwhile; under REPEATABLE READ a row changed since
/// the snapshot is a serialization failure.
///
/// # Safety
/// Inside `as_statement`; as for `find`, and `slot` belongs to `rel`.
unsafe fn lock_found(
    rel: pg_sys::Relation,
    index: pg_sys::Relation,
    columns: &[(i16, pg_sys::Datum)],
    slot: *mut pg_sys::TupleTableSlot,
    estate: *mut pg_sys::EState,
    mode: pg_sys::LockTupleMode::Type,
) -> bool {
    unsafe {
        if !find(rel, index, columns, (*estate).es_snapshot, slot) {
            return false;
        }
        let mut tid = (*slot).tts_tid;
        // Under READ COMMITTED, the newest version of an updated row is locked.
        let flags = pg_sys::TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS
            | if repeatable_read() { 0 } else { pg_sys::TUPLE_LOCK_FLAG_FIND_LAST_VERSION };
        let lock = (*(*rel).rd_tableam).tuple_lock.expect("a table access method locks rows");
        let mut tmfd = pg_sys::TM_FailureData::default();
        let (snapshot, cid, wait) = ((*estate).es_snapshot, (*estate).es_output_cid, pg_sys::LockWaitPolicy::LockWaitBlock);
        let result = pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
            lock(rel, &mut tid, snapshot, slot, cid, mode, wait, flags as u8, &mut tmfd)
        });
        match result {
            pg_sys::TM_Result::TM_Ok | pg_sys::TM_Result::TM_SelfModified => true,
            pg_sys::TM_Result::TM_Deleted | pg_sys::TM_Result::TM_Updated if repeatable_read() => serialization_failure("update"),
            pg_sys::TM_Result::TM_Deleted | pg_sys::TM_Result::TM_Updated => false,
            other => fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("unexpected result {other} locking a row")),
        }
    }
}

/// An index scan of `rel` through `index` (a btree) for the rows whose
/// columns `columns` (attribute number of `rel`, value) are equal to the
/// values given, under `snapshot`. The caller ends it.
///
/// # Safety
/// `index` must be an open btree index of `rel` whose key columns are all
/// in `columns`, with values of the index's input types.
unsafe fn scan(
    rel: pg_sys::Relation,
    index: pg_sys::Relation,
    columns: &[(i16, pg_sys::Datum)],
    snapshot: pg_sys::Snapshot,
) -> pg_sys::IndexScanDesc {
    unsafe {
        let n = (*(*index).rd_index).indnkeyatts as usize;
        let indkey = (*(*index).rd_index).indkey.values.as_slice(n);
        let mut keys: Vec<pg_sys::ScanKeyData> = vec![std::mem::zeroed(); n];
        for (i, key) in keys.iter_mut().enumerate() {
            let Some(&(_, value)) = columns.iter().find(|(att, _)| *att == indkey[i]) else {
                fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "an index column without a value".into())
            };
            let (family, input) = (*(*index).rd_opfamily.add(i), *(*index).rd_opcintype.add(i));
            let equal = pg_sys::get_opfamily_member(family, input, input, pg_sys::BTEqualStrategyNumber as i16);
            pg_sys::ScanKeyInit(key, (i + 1) as i16, pg_sys::BTEqualStrategyNumber as u16, pg_sys::get_opcode(equal), value);
            key.sk_collation = *(*index).rd_indcollation.add(i);
        }
        let scan = pg_sys::index_beginscan(rel, index, snapshot, n as i32, 0);
        pg_sys::index_rescan(scan, keys.as_mut_ptr(), n as i32, std::ptr::null_mut(), 0);
        scan
    }
}

/// Fetches into `slot` the row `scan` finds first (a unique index: the
/// only one).
///
/// # Safety
/// As for `scan`.
unsafe fn find(
    rel: pg_sys::Relation,
    index: pg_sys::Relation,
    columns: &[(i16, pg_sys::Datum)],
    snapshot: pg_sys::Snapshot,
    slot: *mut pg_sys::TupleTableSlot,
) -> bool {
    unsafe {
        let scan = scan(rel, index, columns, snapshot);
        let found = pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot);
        pg_sys::index_endscan(scan);
        found
    }
}

/// The attribute number of column `name` in rows described by `desc`, if
/// they have that column. Compared in place: the write path looks up five
/// columns per statement, and a C string for each cost more than the search.
pub fn find_column(desc: pg_sys::TupleDesc, name: &str) -> Option<i16> {
    // SAFETY: reads the descriptor of an open relation; names are
    // NUL-terminated.
    unsafe {
        let attrs = (*desc).attrs.as_slice((*desc).natts as usize);
        let n = attrs.iter().position(|a| {
            !a.attisdropped && std::ffi::CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == name.as_bytes()
        })?;
        Some(n as i16 + 1)
    }
}

/// The attribute number of column `name` in rows described by `desc`.
fn attnum(desc: pg_sys::TupleDesc, name: &str) -> i16 {
    find_column(desc, name)
        .unwrap_or_else(|| fail(PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN, format!("column \"{name}\" is missing")))
}

/// How many of a contact's entries in the key index a leaving member is
/// looked for among before the primary key is asked: a contact is in a few
/// segments as a rule; past that, a probe of the primary key costs less
/// than fetching more rows.
const KEY_PROBES: usize = 8;

/// A table opened for writing, with its indexes, as the executor opens a
/// statement's result relation.
struct Table {
    rel: pg_sys::Relation,
    info: *mut pg_sys::ResultRelInfo,
    /// Rows to write.
    slot: *mut pg_sys::TupleTableSlot,
    /// Rows found.
    found: *mut pg_sys::TupleTableSlot,
}

impl Table {
    /// # Safety
    /// Inside a transaction, in the executor state's memory.
    unsafe fn open(relid: pg_sys::Oid) -> Table {
        unsafe {
            let rel = pg_sys::table_open(relid, pg_sys::RowExclusiveLock as i32);
            let info = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>()).cast::<pg_sys::ResultRelInfo>();
            (*info).type_ = pg_sys::NodeTag::T_ResultRelInfo;
            pg_sys::InitResultRelInfo(info, rel, 1, std::ptr::null_mut(), 0);
            pg_sys::ExecOpenIndices(info, false);
            let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
            let found = pg_sys::table_slot_create(rel, std::ptr::null_mut());
            Table { rel, info, slot, found }
        }
    }

    fn attnum(&self, name: &str) -> i16 {
        // SAFETY: an open relation.
        attnum(unsafe { (*self.rel).rd_att }, name)
    }

    /// Stores a row with `columns` (attribute number, value) set and every
    /// other column NULL into the write slot.
    unsafe fn store(&self, columns: &[(i16, pg_sys::Datum)]) {
        unsafe {
            let slot = self.slot;
            pg_sys::ExecClearTuple(slot);
            let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
            for i in 0..natts {
                *(*slot).tts_isnull.add(i) = true;
            }
            for &(att, value) in columns {
                *(*slot).tts_values.add(att as usize - 1) = value;
                *(*slot).tts_isnull.add(att as usize - 1) = false;
            }
            pg_sys::ExecStoreVirtualTuple(slot);
            (*slot).tts_tableOid = (*self.rel).rd_id;
        }
    }

    /// Inserts a row (indexes without unique checks to wait on: the count
    /// deltas).
    unsafe fn insert(&self, columns: &[(i16, pg_sys::Datum)], estate: *mut pg_sys::EState) {
        unsafe {
            self.store(columns);
            pg_sys::simple_table_tuple_insert(self.rel, self.slot);
            self.index_row(estate);
        }
    }

    /// Adds the index entries of the row just written from the write slot,
    /// without unique checks to wait on. Not flagged as an UPDATE's (that
    /// hint reads the updated columns from a range table this executor
    /// state does not have).
    unsafe fn index_row(&self, estate: *mut pg_sys::EState) {
        unsafe {
            let recheck = pg_sys::ExecInsertIndexTuples(
                self.info,
                self.slot,
                estate,
                false,
                false,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            pg_sys::list_free(recheck);
        }
    }

    /// Adds `delta` to the column `delta_att` of the row at `tid` if that is
    /// a row of `segment` (attribute, id) this statement sees and can update
    /// without waiting; returns where the new version is, if it did. The row
    /// keeps its page when there is room (HOT): no index entry is written.
    unsafe fn add_to(
        &self,
        mut tid: pg_sys::ItemPointerData,
        segment: (i16, i64),
        delta_att: i16,
        delta: i64,
        estate: *mut pg_sys::EState,
    ) -> Option<pg_sys::ItemPointerData> {
        unsafe {
            let am = (*self.rel).rd_tableam;
            let fetch = (*am).tuple_fetch_row_version.expect("a table access method fetches rows");
            let update = (*am).tuple_update.expect("a table access method updates rows");
            let snapshot = (*estate).es_snapshot;
            if !pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| fetch(self.rel, &mut tid, snapshot, self.found)) {
                return None;
            }
            let found = self.found;
            pg_sys::slot_getsomeattrs_int(found, segment.0.max(delta_att) as i32);
            let value = |att: i16| {
                let i = att as usize - 1;
                (!*(*found).tts_isnull.add(i)).then(|| (*(*found).tts_values.add(i)).value() as i64)
            };
            let (Some(owner), Some(sum)) = (value(segment.0), value(delta_att)) else { return None };
            let total = sum.checked_add(delta).filter(|_| owner == segment.1)?;
            self.store(&[(segment.0, pg_sys::Datum::from(segment.1)), (delta_att, pg_sys::Datum::from(total))]);
            let mut tmfd = pg_sys::TM_FailureData::default();
            let mut lockmode = pg_sys::LockTupleMode::LockTupleExclusive;
            let mut update_indexes = false;
            let result = pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
                update(
                    self.rel,
                    &mut tid,
                    self.slot,
                    (*estate).es_output_cid,
                    snapshot,
                    std::ptr::null_mut(),
                    false,
                    &mut tmfd,
                    &mut lockmode,
                    &mut update_indexes,
                )
            });
            if result != pg_sys::TM_Result::TM_Ok {
                return None;
            }
            if update_indexes {
                // The row moved to another page.
                self.index_row(estate);
            }
            Some((*self.slot).tts_tid)
        }
    }

    /// Inserts a row unless a unique index already has its key, as
    /// `INSERT … ON CONFLICT DO NOTHING` does, but without its speculative
    /// insertion: a flip enters a segment the contact is not in, so a
    /// duplicate is rare, and the speculative token's lock and the
    /// confirmation record cost every insertion (~4 µs of a 100-segment
    /// UPDATE, a WAL record per entering member). The row goes in and its
    /// index entries are checked without waiting (`UNIQUE_CHECK_PARTIAL`);
    /// on a possible duplicate the row is deleted again, the check waits for
    /// a concurrent inserter of the key, and the row is tried again only if
    /// that one rolled back. Returns whether the row went in.
    unsafe fn insert_if_absent(&self, columns: &[(i16, pg_sys::Datum)], estate: *mut pg_sys::EState) -> bool {
        unsafe {
            self.store(columns);
            loop {
                pg_sys::simple_table_tuple_insert(self.rel, self.slot);
                let mut duplicate = false;
                let recheck =
                    pg_sys::ExecInsertIndexTuples(self.info, self.slot, estate, false, true, &mut duplicate, std::ptr::null_mut());
                pg_sys::list_free(recheck);
                if !duplicate {
                    return true;
                }
                // Its own command cannot delete a row it inserted.
                pg_sys::CommandCounterIncrement();
                pg_sys::simple_table_tuple_delete(self.rel, &mut (*self.slot).tts_tid, (*estate).es_snapshot);
                // The unique checks' operators, as ExecOpenIndices prepares
                // them for speculative insertion.
                for i in 0..(*self.info).ri_NumIndices as usize {
                    let (index, info) = (*(*self.info).ri_IndexRelationDescs.add(i), *(*self.info).ri_IndexRelationInfo.add(i));
                    if (*info).ii_Unique && (*info).ii_UniqueOps.is_null() {
                        pg_sys::BuildSpeculativeIndexInfo(index, info);
                    }
                }
                let mut conflict = pg_sys::ItemPointerData::default();
                if !pg_sys::ExecCheckIndexConstraints(self.info, self.slot, estate, &mut conflict, std::ptr::null_mut()) {
                    return false;
                }
                // The other row's inserter rolled back: try again.
            }
        }
    }

    /// The first of the table's open indexes that `wanted` accepts.
    unsafe fn index(&self, wanted: impl Fn(pg_sys::Relation) -> bool) -> Option<pg_sys::Relation> {
        unsafe {
            (0..(*self.info).ri_NumIndices as usize).map(|i| *(*self.info).ri_IndexRelationDescs.add(i)).find(|&i| wanted(i))
        }
    }

    /// Deletes the member row of `columns` (segment, key); returns whether
    /// there was one to delete. It is looked for through the index on the
    /// key first: the contact's entries there share a leaf page, which the
    /// entering member's entry of the same UPDATE goes to next, where the
    /// primary key's entry lies on a leaf of its own (one random page less
    /// per flip pair in a membership table larger than the buffer pool);
    /// then through the primary key.
    unsafe fn delete(&self, columns: &[(i16, pg_sys::Datum)], estate: *mut pg_sys::EState) -> bool {
        unsafe {
            let snapshot = (*estate).es_snapshot;
            let (segment_att, segment) = columns[0];
            let key_att = columns[1].0;
            let pk = pg_sys::RelationGetPrimaryKeyIndex(self.rel);
            let Some(index) = self.index(|index| (*index).rd_id == pk) else {
                fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "a membership table without a primary key".into())
            };
            let on_key = self.index(|index| {
                let form = (*index).rd_index;
                (*(*index).rd_rel).relam == pg_sys::BTREE_AM_OID
                    && (*form).indnkeyatts == 1
                    && *(*form).indkey.values.as_ptr() == key_att
            });
            let of_segment = |slot: *mut pg_sys::TupleTableSlot| {
                let mut isnull = false;
                let value = pg_sys::slot_getattr(slot, segment_att as i32, &mut isnull);
                !isnull && value == segment
            };
            let found = on_key.is_some_and(|on_key| self.fetch(on_key, &columns[1..], snapshot, KEY_PROBES, of_segment))
                || self.fetch(index, columns, snapshot, usize::MAX, |_| true)
                || find(self.rel, index, columns, snapshot, self.found);
            if !found {
                return false;
            }
            let mut tid = (*self.found).tts_tid;
            match self.delete_tid(&mut tid, estate, true) {
                pg_sys::TM_Result::TM_Ok => true,
                // Deleted by this very statement: not twice.
                pg_sys::TM_Result::TM_SelfModified => false,
                pg_sys::TM_Result::TM_Deleted | pg_sys::TM_Result::TM_Updated if repeatable_read() => {
                    serialization_failure("delete")
                }
                // Gone meanwhile (its segment dropped): nothing to count.
                pg_sys::TM_Result::TM_Deleted | pg_sys::TM_Result::TM_Updated => false,
                other => fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("unexpected result {other} deleting a row")),
            }
        }
    }

    /// Fetches into `found` the first row visible under `snapshot` that
    /// `index` points at directly for `columns` and that `wanted` accepts,
    /// looking at `limit` index entries at most; without the page pruning
    /// of an index scan's heap fetch: on a membership page each leaving
    /// member leaves one dead row, and the pruning of `find` scanned the
    /// whole page again on the next probe for every one of them (~2.5% of a
    /// 100-segment UPDATE's backend). False also when the row is reached
    /// only through a HOT chain (a member row updated in place), which
    /// `find` follows.
    unsafe fn fetch(
        &self,
        index: pg_sys::Relation,
        columns: &[(i16, pg_sys::Datum)],
        snapshot: pg_sys::Snapshot,
        limit: usize,
        wanted: impl Fn(*mut pg_sys::TupleTableSlot) -> bool,
    ) -> bool {
        unsafe {
            let fetch = (*(*self.rel).rd_tableam).tuple_fetch_row_version.expect("a table access method fetches rows");
            let scan = scan(self.rel, index, columns, snapshot);
            let mut found = false;
            for _ in 0..limit {
                let tid = pg_sys::index_getnext_tid(scan, pg_sys::ScanDirection::ForwardScanDirection);
                if tid.is_null() {
                    break;
                }
                found = pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| fetch(self.rel, tid, snapshot, self.found))
                    && wanted(self.found);
                if found {
                    break;
                }
            }
            pg_sys::index_endscan(scan);
            found
        }
    }

    /// Deletes row `tid`, waiting for a concurrent writer of it if `wait`.
    unsafe fn delete_tid(
        &self,
        tid: &mut pg_sys::ItemPointerData,
        estate: *mut pg_sys::EState,
        wait: bool,
    ) -> pg_sys::TM_Result::Type {
        unsafe {
            let delete = (*(*self.rel).rd_tableam).tuple_delete.expect("a table access method deletes");
            let mut tmfd = pg_sys::TM_FailureData::default();
            pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
                delete(
                    self.rel,
                    tid,
                    (*estate).es_output_cid,
                    (*estate).es_snapshot,
                    std::ptr::null_mut(),
                    wait,
                    &mut tmfd,
                    false,
                )
            })
        }
    }

    unsafe fn close(self) {
        unsafe {
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
            pg_sys::ExecDropSingleTupleTableSlot(self.found);
            pg_sys::ExecCloseIndices(self.info);
            pg_sys::table_close(self.rel, pg_sys::NoLock as i32);
        }
    }
}

/// The input function of a key column: keys travel as text from the row
/// trigger to the statement trigger.
struct KeyInput {
    function: pg_sys::Oid,
    param: pg_sys::Oid,
    typmod: i32,
}

impl KeyInput {
    unsafe fn new(rel: pg_sys::Relation, att: i16) -> KeyInput {
        unsafe {
            let attr = (*(*rel).rd_att).attrs.as_ptr().add(att as usize - 1);
            let (mut function, mut param) = (pg_sys::Oid::INVALID, pg_sys::Oid::INVALID);
            pg_sys::getTypeInputInfo((*attr).atttypid, &mut function, &mut param);
            KeyInput { function, param, typmod: (*attr).atttypmod }
        }
    }

    fn datum(&self, text: &str) -> pg_sys::Datum {
        let text = CString::new(text).expect("a key's text form has no NUL");
        // SAFETY: the type's own input function, on a C string.
        unsafe { pg_sys::OidInputFunctionCall(self.function, text.as_ptr().cast_mut(), self.param, self.typmod) }
    }
}
