//! Rows written, found and locked with the executor's own routines,
//! without starting a statement.
//!
//! A single-row UPDATE that moves a contact across the boundary of
//! row-local segments changes a membership row or two and a count delta or
//! two; through SQL that took one statement whose executor start-up and
//! shutdown cost more than the writes (bench/findings.md). These routines
//! write and lock the same rows the way `INSERT … ON CONFLICT DO NOTHING`,
//! `DELETE` and `SELECT … FOR …` do, with their semantics; what to write is
//! decided above (`maintain::flips`, `state::counts`, `state::liveness`).
//! No trigger fires on the tables written here. `index_rows` reads a few
//! rows through an index the same way (`maintain::definitions`).

use std::ffi::CString;

use pgrx::pg_sys;

use super::backend::repeatable_read;
use super::error::{fail, serialization_failure, Code as PgSqlErrorCode};

/// A statement's worth of work without a statement: a fresh snapshot
/// (READ COMMITTED) that sees what this transaction wrote so far, and an
/// executor state whose memory holds every allocation; what it writes is
/// visible to the statements after it.
pub struct Statement {
    estate: *mut pg_sys::EState,
    outer: pg_sys::MemoryContext,
    _snapshot: super::guard::ActiveSnapshot,
}

/// Runs `work` as a statement of its own would run (`Statement`).
pub fn statement<R>(work: impl FnOnce(&Statement) -> R) -> R {
    let snapshot = super::guard::ActiveSnapshot::for_statement();
    // SAFETY: inside a transaction; the executor state is freed, and the
    // memory context switched back, by Drop (or with the (sub)transaction
    // on error).
    let st = unsafe {
        let estate = pg_sys::CreateExecutorState();
        let outer = pg_sys::MemoryContextSwitchTo((*estate).es_query_cxt);
        (*estate).es_snapshot = pg_sys::GetActiveSnapshot();
        (*estate).es_output_cid = pg_sys::GetCurrentCommandId(true);
        Statement { estate, outer, _snapshot: snapshot }
    };
    work(&st)
}

impl Drop for Statement {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        // SAFETY: undoes what `statement` set up, before the snapshot
        // guard pops the snapshot.
        unsafe {
            pg_sys::MemoryContextSwitchTo(self.outer);
            pg_sys::FreeExecutorState(self.estate);
            pg_sys::CommandCounterIncrement();
        }
    }
}

/// How `Statement::lock_rows` locks a row.
#[derive(Clone, Copy)]
pub enum RowLock {
    /// `FOR KEY SHARE`.
    KeyShare,
    /// `FOR NO KEY UPDATE`.
    NoKeyUpdate,
}

/// The values `Statement::lock_rows` looks rows up by.
pub enum Keys<'k> {
    /// Text forms, read with the key column's input function.
    Text(&'k [&'k String]),
    Int8(&'k [i64]),
}

impl Statement {
    /// Opens table `relid` for writing, with its indexes, as the executor
    /// opens a statement's result relation; closed on drop.
    pub fn open(&self, relid: pg_sys::Oid) -> TableWriter<'_> {
        // SAFETY: inside a transaction, in the executor state's memory.
        unsafe { TableWriter::open(relid, self) }
    }

    /// Frees what the index checks evaluated for the row just written.
    pub fn reset_per_tuple(&self) {
        // SAFETY: the executor state of this statement.
        unsafe {
            let per_tuple = (*self.estate).es_per_tuple_exprcontext;
            if !per_tuple.is_null() {
                pg_sys::MemoryContextReset((*per_tuple).ecxt_per_tuple_memory);
            }
        }
    }

    /// Locks, waiting, the rows of table `relid` whose column `column` holds
    /// each of `keys`, found through a valid unique btree index on that
    /// column alone, as `SELECT … FOR …` does, in the index's order (the
    /// order an index scan locks rows in). Per key, in the order given,
    /// whether its row is locked (or modified by this transaction: as good);
    /// false if there is none or it is gone meanwhile; with `recheck`, also
    /// if the row version locked no longer holds the key (the transaction
    /// waited for gave it another). Under REPEATABLE READ a row changed since
    /// the snapshot is a serialization failure. None, locking nothing, when
    /// the table has no such index.
    pub fn lock_rows(&self, relid: pg_sys::Oid, column: &str, keys: Keys<'_>, mode: RowLock, recheck: bool) -> Option<Vec<bool>> {
        let mode = match mode {
            RowLock::KeyShare => pg_sys::LockTupleMode::LockTupleKeyShare,
            RowLock::NoKeyUpdate => pg_sys::LockTupleMode::LockTupleNoKeyExclusive,
        };
        // SAFETY: relations opened and closed here, rows of their own types.
        unsafe {
            let rel = pg_sys::table_open(relid, pg_sys::RowShareLock as i32);
            let att = attnum((*rel).rd_att, column);
            let Some(index) = key_index(rel, att) else {
                pg_sys::table_close(rel, pg_sys::NoLock as i32);
                return None;
            };
            let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
            let values: Vec<pg_sys::Datum> = match keys {
                Keys::Text(texts) => {
                    let input = KeyInput::new(rel, att);
                    texts.iter().map(|t| input.datum(t)).collect()
                }
                Keys::Int8(ids) => ids.iter().map(|&id| pg_sys::Datum::from(id)).collect(),
            };
            let order = pg_sys::index_getprocinfo(index, 1, BTORDER_PROC);
            let collation = *(*index).rd_indcollation;
            let mut by_key: Vec<usize> = (0..values.len()).collect();
            by_key.sort_by(|&a, &b| {
                let c = pg_sys::FunctionCall2Coll(order, collation, values[a], values[b]).value() as i32;
                c.cmp(&0)
            });
            let mut locked = vec![false; values.len()];
            for i in by_key {
                let value = values[i];
                locked[i] = lock_found(rel, index, &[(att, value)], slot, self.estate, mode)
                    && (!recheck || holds_key(slot, att, index, value));
            }
            pg_sys::ExecDropSingleTupleTableSlot(slot);
            pg_sys::index_close(index, pg_sys::NoLock as i32);
            pg_sys::table_close(rel, pg_sys::NoLock as i32);
            Some(locked)
        }
    }
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
/// Inside a `Statement` whose executor state is `estate`; as for `find`,
/// and `slot` belongs to `rel`.
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
pub(super) fn find_column(desc: pg_sys::TupleDesc, name: &str) -> Option<i16> {
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
/// statement's result relation (`Statement::open`); closed on drop.
pub struct TableWriter<'s> {
    st: &'s Statement,
    rel: pg_sys::Relation,
    info: *mut pg_sys::ResultRelInfo,
    /// Rows to write.
    slot: *mut pg_sys::TupleTableSlot,
    /// Rows found.
    found: *mut pg_sys::TupleTableSlot,
}

impl<'s> TableWriter<'s> {
    /// # Safety
    /// Inside a transaction, in the executor state's memory.
    unsafe fn open(relid: pg_sys::Oid, st: &'s Statement) -> TableWriter<'s> {
        unsafe {
            let rel = pg_sys::table_open(relid, pg_sys::RowExclusiveLock as i32);
            let info = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>()).cast::<pg_sys::ResultRelInfo>();
            (*info).type_ = pg_sys::NodeTag::T_ResultRelInfo;
            pg_sys::InitResultRelInfo(info, rel, 1, std::ptr::null_mut(), 0);
            pg_sys::ExecOpenIndices(info, false);
            let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
            let found = pg_sys::table_slot_create(rel, std::ptr::null_mut());
            TableWriter { st, rel, info, slot, found }
        }
    }

    /// The attribute number of column `name` (an ERROR if it is missing).
    pub fn attnum(&self, name: &str) -> i16 {
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
    /// Returns where the row went.
    pub fn insert(&self, columns: &[(i16, pg_sys::Datum)]) -> pg_sys::ItemPointerData {
        // SAFETY: a row of this table's type into its own slot.
        unsafe {
            self.store(columns);
            pg_sys::simple_table_tuple_insert(self.rel, self.slot);
            self.index_row();
            (*self.slot).tts_tid
        }
    }

    /// Adds the index entries of the row just written from the write slot,
    /// without unique checks to wait on. Not flagged as an UPDATE's (that
    /// hint reads the updated columns from a range table this executor
    /// state does not have).
    unsafe fn index_row(&self) {
        let estate = self.st.estate;
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
    pub fn add_to(
        &self,
        mut tid: pg_sys::ItemPointerData,
        segment: (i16, i64),
        delta_att: i16,
        delta: i64,
    ) -> Option<pg_sys::ItemPointerData> {
        let estate = self.st.estate;
        // SAFETY: a fetch and an update of this table's rows through its
        // access method, in this statement.
        unsafe {
            self.check_replica_identity(pg_sys::CmdType::CMD_UPDATE);
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
                self.index_row();
            }
            Some((*self.slot).tts_tid)
        }
    }

    /// Inserts a row unless a unique index already has its key, as
    /// `INSERT … ON CONFLICT DO NOTHING` does, but without its speculative
    /// insertion: a flip enters a segment the contact is not in, so a
    /// duplicate is rare, and the speculative token's lock and the
    /// confirmation record cost every insertion (a WAL record per entering
    /// member; bench/findings.md). A row already there (or being inserted:
    /// waited for) is found first, and nothing is written; otherwise the row
    /// goes in and its index entries are checked without waiting
    /// (`UNIQUE_CHECK_PARTIAL`); on a possible duplicate (a concurrent insert
    /// since the check) the row is deleted again, the check waits for that
    /// inserter, and the row is tried again only if it rolled back. Returns
    /// whether the row went in.
    ///
    /// `columns` begin with the segment and the key: a membership table's
    /// index on `(key, segment_id)` answers the first look when no other
    /// transaction is writing the row (`settled_member`).
    pub fn insert_if_absent(&self, columns: &[(i16, pg_sys::Datum)]) -> bool {
        let estate = self.st.estate;
        // SAFETY: a row of this table's type, its index entries checked as
        // the executor checks them.
        unsafe {
            self.store(columns);
            // A row already there (a second event deciding a member already
            // in) is found before anything is written, as ON CONFLICT's
            // pre-check does: an insert taken back would still reach logical
            // decoding (a duplicate on a subscriber, a false "leave" in CDC)
            // and bloat the table.
            self.prepare_unique_checks();
            let mut conflict = pg_sys::ItemPointerData::default();
            let absent = match self.settled_member(columns) {
                Some(present) => !present,
                None => pg_sys::ExecCheckIndexConstraints(self.info, self.slot, estate, &mut conflict, std::ptr::null_mut()),
            };
            if !absent {
                return false;
            }
            loop {
                pg_sys::simple_table_tuple_insert(self.rel, self.slot);
                let mut duplicate = false;
                let recheck =
                    pg_sys::ExecInsertIndexTuples(self.info, self.slot, estate, false, true, &mut duplicate, std::ptr::null_mut());
                pg_sys::list_free(recheck);
                if !duplicate {
                    return true;
                }
                // Inserted concurrently since the pre-check (rare): take the
                // row back. Its own command cannot delete a row it inserted.
                pg_sys::CommandCounterIncrement();
                pg_sys::simple_table_tuple_delete(self.rel, &mut (*self.slot).tts_tid, (*estate).es_snapshot);
                if !pg_sys::ExecCheckIndexConstraints(self.info, self.slot, estate, &mut conflict, std::ptr::null_mut()) {
                    return false;
                }
                // The other row's inserter rolled back: try again.
            }
        }
    }

    /// The unique checks' operators, as ExecOpenIndices prepares them for
    /// speculative insertion (`ExecCheckIndexConstraints` needs them).
    unsafe fn prepare_unique_checks(&self) {
        unsafe {
            for i in 0..(*self.info).ri_NumIndices as usize {
                let (index, info) = (*(*self.info).ri_IndexRelationDescs.add(i), *(*self.info).ri_IndexRelationInfo.add(i));
                if (*info).ii_Unique && (*info).ii_UniqueOps.is_null() {
                    pg_sys::BuildSpeculativeIndexInfo(index, info);
                }
            }
        }
    }

    /// Whether the member row of `columns` (segment, key) is there, found
    /// through the index on `(key, segment_id)` as the unique check would
    /// find it (a dirty snapshot: rows committed, or written by this
    /// transaction); None without that index, or when another transaction
    /// in progress inserts or deletes the row (the unique check waits for
    /// it). The check itself descends the primary key, whose entries of one
    /// contact lie in as many leaf pages as it has segments; the contact's
    /// entries in this index share one, which its other flips read too.
    unsafe fn settled_member(&self, columns: &[(i16, pg_sys::Datum)]) -> Option<bool> {
        unsafe {
            let index = self.contact_index(columns[0].0, columns[1].0, true)?;
            let mut dirty: pg_sys::SnapshotData = std::mem::zeroed();
            dirty.snapshot_type = pg_sys::SnapshotType::SNAPSHOT_DIRTY;
            if !self.fetch(index, &columns[..2], &mut dirty, usize::MAX, |_| true) {
                // Not reached through an index entry of its own (a HOT
                // chain) counts as absent: the insert's own check finds it.
                return Some(false);
            }
            let settled = dirty.xmin == pg_sys::InvalidTransactionId
                && dirty.xmax == pg_sys::InvalidTransactionId
                && dirty.speculativeToken == 0;
            settled.then_some(true)
        }
    }

    /// The membership table's btree index on the key alone, or on
    /// `(key, segment_id)` if `exact`.
    unsafe fn contact_index(&self, segment_att: i16, key_att: i16, exact: bool) -> Option<pg_sys::Relation> {
        unsafe {
            self.index(|index| {
                let form = (*index).rd_index;
                let keys = (*form).indkey.values.as_slice((*form).indnkeyatts as usize);
                (*(*index).rd_rel).relam == pg_sys::BTREE_AM_OID
                    && if exact { keys == [key_att, segment_att] } else { keys == [key_att] }
            })
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
    /// per flip pair in a membership table larger than the buffer pool).
    /// That index is `(key, segment_id)` since registrations made it so:
    /// one probe finds the row. On a membership table of an older
    /// registration it is on the key alone, and the contact's rows are
    /// fetched until the segment's turns up, then the primary key is asked.
    pub fn delete(&self, columns: &[(i16, pg_sys::Datum)]) -> bool {
        // SAFETY: index lookups and a delete of this table's rows.
        unsafe {
            let estate = self.st.estate;
            let snapshot = (*estate).es_snapshot;
            let (segment_att, segment) = columns[0];
            let key_att = columns[1].0;
            let pk = pg_sys::RelationGetPrimaryKeyIndex(self.rel);
            let Some(index) = self.index(|index| (*index).rd_id == pk) else {
                fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "a membership table without a primary key".into())
            };
            let on_key = |exact: bool| self.contact_index(segment_att, key_att, exact);
            let of_segment = |slot: *mut pg_sys::TupleTableSlot| {
                let mut isnull = false;
                let value = pg_sys::slot_getattr(slot, segment_att as i32, &mut isnull);
                !isnull && value == segment
            };
            // Rows reached only through a HOT chain (a member row updated
            // in place) are found by `find`, which follows it.
            let found = match on_key(true) {
                Some(exact) => self.fetch(exact, columns, snapshot, usize::MAX, |_| true),
                None => {
                    on_key(false).is_some_and(|on_key| self.fetch(on_key, &columns[1..], snapshot, KEY_PROBES, of_segment))
                        || self.fetch(index, columns, snapshot, usize::MAX, |_| true)
                }
            } || find(self.rel, index, columns, snapshot, self.found);
            if !found {
                return false;
            }
            let mut tid = (*self.found).tts_tid;
            match self.delete_tid(&mut tid, true) {
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
    /// whole page again on the next probe for every one of them
    /// (bench/findings.md). False also when the row is reached
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

    /// Deletes row `tid` unless another transaction holds it; whether it did.
    pub fn delete_now(&self, mut tid: pg_sys::ItemPointerData) -> bool {
        // SAFETY: a row position of this table.
        unsafe { self.delete_tid(&mut tid, false) == pg_sys::TM_Result::TM_Ok }
    }

    /// Deletes row `tid`, waiting for a concurrent writer of it if `wait`.
    unsafe fn delete_tid(&self, tid: &mut pg_sys::ItemPointerData, wait: bool) -> pg_sys::TM_Result::Type {
        let estate = self.st.estate;
        unsafe {
            self.check_replica_identity(pg_sys::CmdType::CMD_DELETE);
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

    /// The executor's refusal to update or delete rows of a table that a
    /// publication replicates those of but that has no replica identity
    /// (the subscriber could not find them): an ERROR naming the table,
    /// before anything is written, rather than changes no subscriber can
    /// apply. The extension's tables have one; this keeps it so if someone
    /// sets `REPLICA IDENTITY NOTHING` on one.
    unsafe fn check_replica_identity(&self, cmd: pg_sys::CmdType::Type) {
        unsafe { pg_sys::CheckCmdReplicaIdentity(self.rel, cmd) }
    }

    /// The text form `text` of a value of column `att`, as a datum.
    pub fn input(&self, att: i16) -> KeyInput {
        // SAFETY: an open relation and one of its attributes.
        unsafe { KeyInput::new(self.rel, att) }
    }

    /// Every row under the statement's snapshot whose column `att` equals
    /// `value`, found by a plain index scan of the first index that begins
    /// with that column (an ERROR without one), with its position and the
    /// int8 in column `read`. A plain index scan marks the index entries of
    /// dead rows as such; a bitmap scan would not.
    pub fn rows_where(&self, att: i16, value: pg_sys::Datum, read: i16) -> Vec<(pg_sys::ItemPointerData, i64)> {
        // SAFETY: an index scan of this table's rows into its own slot.
        unsafe {
            let Some(index) = self.index(|index| (*(*index).rd_index).indkey.values.as_slice(1)[0] == att) else {
                fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("{} without its index", self.name()))
            };
            let mut seen = vec![];
            let found = self.found;
            let scan = scan(self.rel, index, &[(att, value)], (*self.st.estate).es_snapshot);
            while pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, found) {
                pg_sys::slot_getsomeattrs_int(found, read as i32);
                seen.push(((*found).tts_tid, (*(*found).tts_values.add(read as usize - 1)).value() as i64));
            }
            pg_sys::index_endscan(scan);
            seen
        }
    }

    fn name(&self) -> String {
        // SAFETY: an open relation's name.
        unsafe { std::ffi::CStr::from_ptr((*(*self.rel).rd_rel).relname.data.as_ptr()).to_string_lossy().into_owned() }
    }
}

impl Drop for TableWriter<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        // SAFETY: closes what `open` opened.
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
pub struct KeyInput {
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

    pub fn datum(&self, text: &str) -> pg_sys::Datum {
        let text = CString::new(text).expect("a key's text form has no NUL");
        // SAFETY: the type's own input function, on a C string.
        unsafe { pg_sys::OidInputFunctionCall(self.function, text.as_ptr().cast_mut(), self.param, self.typmod) }
    }
}

/// How many buckets the keys of one table hash into for `key_buckets`: the
/// most locks a statement takes for them, however many rows it writes.
pub const KEY_BUCKETS: u32 = 256;

/// The buckets (sorted, each once) that the values of column `column` of
/// table `relid` whose text forms are `texts` hash into, by the hash of the
/// column's type: equal values share a bucket whatever their text form
/// (`1.0` and `1` as numeric).
pub fn key_buckets<'t>(relid: pg_sys::Oid, column: &str, texts: impl IntoIterator<Item = &'t str>) -> Vec<u32> {
    // SAFETY: the relation opened and closed here; the type's own input and
    // hash functions, under the column's collation.
    let mut buckets: Vec<u32> = unsafe {
        let rel = pg_sys::relation_open(relid, pg_sys::AccessShareLock as i32);
        let att = attnum((*rel).rd_att, column);
        let attr = (*(*rel).rd_att).attrs.as_ptr().add(att as usize - 1);
        let input = KeyInput::new(rel, att);
        let cache = pg_sys::lookup_type_cache((*attr).atttypid, pg_sys::TYPECACHE_HASH_PROC_FINFO as i32);
        let hash = &mut (*cache).hash_proc_finfo;
        let collation = (*attr).attcollation;
        let buckets = if hash.fn_oid == pg_sys::Oid::INVALID {
            // No hash function: one bucket for every key.
            vec![0]
        } else {
            texts
                .into_iter()
                .map(|t| (pg_sys::FunctionCall1Coll(hash, collation, input.datum(t)).value() as u32) % KEY_BUCKETS)
                .collect()
        };
        pg_sys::relation_close(rel, pg_sys::NoLock as i32);
        buckets
    };
    buckets.sort_unstable();
    buckets.dedup();
    buckets
}

/// A row found by `index_rows`, valid while `read` runs.
pub struct IndexedRow<'a> {
    desc: pg_sys::TupleDesc,
    attnums: &'a [i16],
    values: &'a [pg_sys::Datum],
    nulls: &'a [bool],
}

impl IndexedRow<'_> {
    /// The value of the `n`th column asked for (0-based), None for NULL;
    /// an ERROR if `T` is not its type.
    pub fn get<T: pgrx::FromDatum + pgrx::IntoDatum>(&self, n: usize) -> Option<T> {
        let i = self.attnums[n] as usize - 1;
        // SAFETY: a column of the slot's current row, converted after its
        // type is checked against `T`'s.
        unsafe {
            let typid = (*(*self.desc).attrs.as_ptr().add(i)).atttypid;
            T::try_from_datum(self.values[i], self.nulls[i], typid)
                .unwrap_or_else(|e| fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string()))
        }
    }
}

/// The rows of table `relid` under the active snapshot whose columns
/// `keys` (name, value) equal the values given, found through its btree
/// index `index`, whose key columns are those; `read` reads each, given
/// the values of the columns `columns`. For the few catalog rows a write
/// reads per contact's tenant: executing a kept plan cost more than
/// reading them (bench/findings.md).
pub fn index_rows<T>(
    relid: pg_sys::Oid,
    index: pg_sys::Oid,
    keys: &[(&str, pg_sys::Datum)],
    columns: &[&str],
    mut read: impl FnMut(&IndexedRow<'_>) -> T,
) -> Vec<T> {
    // SAFETY: the table and its index opened, scanned into a slot of the
    // table's own and closed here; each row is read before the next
    // replaces it, and only the columns the table has.
    unsafe {
        let lock = pg_sys::AccessShareLock as i32;
        let rel = pg_sys::table_open(relid, lock);
        let index = pg_sys::index_open(index, lock);
        if (*(*index).rd_index).indrelid != relid {
            fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "an index of another table".into());
        }
        let desc = (*rel).rd_att;
        let keys: Vec<(i16, pg_sys::Datum)> = keys.iter().map(|&(name, value)| (attnum(desc, name), value)).collect();
        let attnums: Vec<i16> = columns.iter().map(|name| attnum(desc, name)).collect();
        let last = attnums.iter().copied().max().unwrap_or(0) as i32;
        let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
        let scan = scan(rel, index, &keys, pg_sys::GetActiveSnapshot());
        let mut rows = vec![];
        while pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot) {
            if last > 0 {
                pg_sys::slot_getsomeattrs_int(slot, last);
            }
            let values = std::slice::from_raw_parts((*slot).tts_values, last as usize);
            let nulls = std::slice::from_raw_parts((*slot).tts_isnull, last as usize);
            rows.push(read(&IndexedRow { desc, attnums: &attnums, values, nulls }));
        }
        pg_sys::index_endscan(scan);
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::index_close(index, pg_sys::NoLock as i32);
        pg_sys::table_close(rel, pg_sys::NoLock as i32);
        rows
    }
}

/// Per key (text forms, in the order given), whether table `relid` has a
/// row under the active snapshot whose column `column` holds it, found
/// through a unique btree index on that column alone (None without one);
/// with `also` (a column and a value's text form), a row whose column also
/// writes that value. A bulk import asks this of every contact it names:
/// one probe each, where a query's plan hashed the whole table
/// (bench/findings.md).
pub fn present(relid: pg_sys::Oid, column: &str, keys: &[&str], also: Option<(&str, &str)>) -> Option<Vec<bool>> {
    // SAFETY: the table and its index opened and closed here, one index
    // scan rescanned per key into a slot of the table's own; the values
    // come from the columns' own input and output functions.
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as i32);
        let att = attnum((*rel).rd_att, column);
        let Some(index) = key_index(rel, att) else {
            pg_sys::table_close(rel, pg_sys::NoLock as i32);
            return None;
        };
        let also = also.map(|(name, value)| {
            let att = attnum((*rel).rd_att, name);
            let typid = (*(*(*rel).rd_att).attrs.as_ptr().add(att as usize - 1)).atttypid;
            let (mut output, mut varlena) = (pg_sys::Oid::INVALID, false);
            pg_sys::getTypeOutputInfo(typid, &mut output, &mut varlena);
            (att, output, value)
        });
        let input = KeyInput::new(rel, att);
        let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
        let first = keys.first().map(|k| input.datum(k)).unwrap_or(pg_sys::Datum::from(0));
        let scan = scan(rel, index, &[(att, first)], pg_sys::GetActiveSnapshot());
        let mut found = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                (*(*scan).keyData).sk_argument = input.datum(key);
                pg_sys::index_rescan(scan, (*scan).keyData, 1, std::ptr::null_mut(), 0);
            }
            let hit = pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot)
                && also.is_none_or(|(att, output, value)| {
                    let mut isnull = false;
                    let datum = pg_sys::slot_getattr(slot, att as i32, &mut isnull);
                    !isnull && std::ffi::CStr::from_ptr(pg_sys::OidOutputFunctionCall(output, datum)).to_bytes() == value.as_bytes()
                });
            found.push(hit);
        }
        pg_sys::index_endscan(scan);
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::index_close(index, pg_sys::NoLock as i32);
        pg_sys::table_close(rel, pg_sys::NoLock as i32);
        Some(found)
    }
}
