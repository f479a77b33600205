//! The trigger behind every registered table: its C entry point, and safe
//! views of what the trigger manager hands it (the relation, its row type,
//! the row images of a row trigger, the transition tables of a statement
//! trigger).

use std::marker::PhantomData;
use std::sync::OnceLock;

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::error::{fail, Code};

/// What fired.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Insert,
    Update,
    Delete,
    Truncate,
}

/// One firing of `segments.maintain()`, valid while the trigger runs.
pub struct Trigger<'a> {
    data: *mut pg_sys::TriggerData,
    _call: PhantomData<&'a ()>,
}

impl<'a> Trigger<'a> {
    pub(super) fn data(&self) -> *mut pg_sys::TriggerData {
        self.data
    }

    /// The table the trigger fired on.
    pub fn relid(&self) -> pg_sys::Oid {
        // SAFETY: the trigger's relation, open for the statement.
        unsafe { (*(*self.data).tg_relation).rd_id }
    }

    /// The table's row type, as its rows are now.
    pub fn row_type(&self) -> RowType<'a> {
        // SAFETY: as for `relid`.
        RowType { desc: unsafe { (*(*self.data).tg_relation).rd_att }, _call: PhantomData }
    }

    pub fn op(&self) -> Op {
        // SAFETY: valid trigger data.
        let event = unsafe { (*self.data).tg_event } & pg_sys::TRIGGER_EVENT_OPMASK;
        match event {
            pg_sys::TRIGGER_EVENT_INSERT => Op::Insert,
            pg_sys::TRIGGER_EVENT_UPDATE => Op::Update,
            pg_sys::TRIGGER_EVENT_DELETE => Op::Delete,
            _ => Op::Truncate,
        }
    }

    /// A row trigger (else a statement trigger).
    pub fn for_each_row(&self) -> bool {
        // SAFETY: valid trigger data.
        unsafe { (*self.data).tg_event & pg_sys::TRIGGER_EVENT_ROW != 0 }
    }

    /// The old and the new image of the row an UPDATE row trigger fired for.
    pub fn update_images(&self) -> (Row<'a>, Row<'a>) {
        let desc = self.row_type().desc;
        // SAFETY: an AFTER UPDATE row trigger has both tuples set; the
        // caller asks only for UPDATE row triggers (checked).
        unsafe {
            let (old, new) = ((*self.data).tg_trigtuple, (*self.data).tg_newtuple);
            if old.is_null() || new.is_null() {
                fail(Code::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "an UPDATE row trigger without row images".into());
            }
            (Row { tuple: old, desc, _call: PhantomData }, Row { tuple: new, desc, _call: PhantomData })
        }
    }

    /// Calls `each` with every row of the statement's transition table
    /// (`new`: the inserted rows, else the deleted ones), read through a
    /// read pointer of its own, as a query over the table reads it
    /// (nodeNamedtuplestorescan.c).
    pub fn transition_rows(&self, new: bool, mut each: impl FnMut(Row<'_>)) {
        let desc = self.row_type().desc;
        // SAFETY: the transition tables of the running trigger, of rows
        // described by the relation's descriptor.
        unsafe {
            let store = if new { (*self.data).tg_newtable } else { (*self.data).tg_oldtable };
            if store.is_null() {
                return;
            }
            let slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple);
            let reader = pg_sys::tuplestore_alloc_read_pointer(store, pg_sys::EXEC_FLAG_REWIND as i32);
            pg_sys::tuplestore_select_read_pointer(store, reader);
            pg_sys::tuplestore_rescan(store);
            while pg_sys::tuplestore_gettupleslot(store, true, false, slot) {
                let mut copied = false;
                let tuple = pg_sys::ExecFetchSlotHeapTuple(slot, false, &mut copied);
                each(Row { tuple, desc, _call: PhantomData });
                if copied {
                    pg_sys::heap_freetuple(tuple);
                }
            }
            pg_sys::ExecDropSingleTupleTableSlot(slot);
        }
    }
}

/// The row type of a trigger's table.
#[derive(Clone, Copy)]
pub struct RowType<'a> {
    pub(super) desc: pg_sys::TupleDesc,
    _call: PhantomData<&'a ()>,
}

impl RowType<'_> {
    #[cfg(any(test, feature = "pg_test"))]
    pub(super) fn new(desc: pg_sys::TupleDesc) -> Self {
        RowType { desc, _call: PhantomData }
    }

    /// The attribute number of column `name`, if the rows have that column.
    pub fn attnum(&self, name: &str) -> Option<i16> {
        super::heap::find_column(self.desc, name)
    }
}

/// A row image of a trigger's table.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    pub(super) tuple: pg_sys::HeapTuple,
    pub(super) desc: pg_sys::TupleDesc,
    _call: PhantomData<&'a ()>,
}

impl Row<'_> {
    #[cfg(any(test, feature = "pg_test"))]
    pub(super) fn new(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc) -> Self {
        Row { tuple, desc, _call: PhantomData }
    }

    /// Attribute `n` as text (None: NULL, or no such attribute).
    pub fn text(&self, n: i32) -> Option<String> {
        if n <= 0 {
            return None;
        }
        // SAFETY: a row described by `desc`; `n` is one of its attributes
        // (SPI_getvalue checks the range).
        unsafe {
            let value = pg_sys::SPI_getvalue(self.tuple, self.desc, n);
            if value.is_null() {
                return None;
            }
            let text = std::ffi::CStr::from_ptr(value).to_string_lossy().into_owned();
            pg_sys::pfree(value.cast());
            Some(text)
        }
    }

    /// Whether this row and `other` (of the same table) hold the same bytes
    /// in attribute `n` (`Some(true)`), different ones (`Some(false)`), or
    /// NULL in both (None). The same bytes are the same value; different
    /// bytes may still be equal values (`1.0` and `1.00`, a compressed and
    /// a plain text): then the change is taken for one, which costs work,
    /// never exactness.
    pub fn same_bytes(&self, other: &Row<'_>, n: i32) -> Option<bool> {
        // SAFETY: both tuples are rows described by `desc`; `n` is checked
        // against its attributes.
        unsafe {
            if n <= 0 || n > (*self.desc).natts {
                return Some(false);
            }
            let (mut old_null, mut new_null) = (false, false);
            let a = pg_sys::SPI_getbinval(self.tuple, self.desc, n, &mut old_null);
            let b = pg_sys::SPI_getbinval(other.tuple, self.desc, n, &mut new_null);
            if old_null || new_null {
                return if old_null && new_null { None } else { Some(false) };
            }
            let attr = &*(*self.desc).attrs.as_ptr().add(n as usize - 1);
            Some(same_datum_bytes(a, b, attr.attbyval, attr.attlen))
        }
    }

    /// Whether this row and `other` have the same, non-NULL value in
    /// attribute `n`.
    pub fn same_key(&self, other: &Row<'_>, n: i32) -> bool {
        n > 0 && self.same_bytes(other, n) == Some(true)
    }
}

/// Whether two values of a type stored as `byval` and `len` (pg_type's
/// typbyval and typlen) hold the same bytes: then they are the same value.
///
/// # Safety
/// Both must be values of that type, not NULL.
pub unsafe fn same_datum_bytes(a: pg_sys::Datum, b: pg_sys::Datum, byval: bool, len: i16) -> bool {
    if byval {
        return a == b;
    }
    let (a, b) = (a.cast_mut_ptr::<u8>(), b.cast_mut_ptr::<u8>());
    unsafe {
        let len = match len {
            -1 => {
                let len = pgrx::varlena::varsize_any(a.cast());
                if len != pgrx::varlena::varsize_any(b.cast()) {
                    return false;
                }
                len
            }
            -2 => std::ffi::CStr::from_ptr(a.cast()).to_bytes().len() + 1,
            len => len as usize,
        };
        std::slice::from_raw_parts(a, len) == std::slice::from_raw_parts(b, len)
    }
}

/// What `segments.maintain()` calls with each firing; set once, from `_PG_init`.
static HANDLER: OnceLock<fn(&Trigger<'_>)> = OnceLock::new();

pub fn set_handler(handler: fn(&Trigger<'_>)) {
    let _ = HANDLER.set(handler);
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
/// Called by PostgreSQL's function manager.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn segments_maintain(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let context = unsafe { (*fcinfo).context };
    let is_trigger = !context.is_null() && unsafe { (*context).type_ } == pg_sys::NodeTag::T_TriggerData;
    if !is_trigger {
        fail(Code::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "segments.maintain() is a trigger".into());
    }
    let trigger = Trigger { data: context as *mut pg_sys::TriggerData, _call: PhantomData };
    match HANDLER.get() {
        Some(handle) => handle(&trigger),
        None => fail(Code::ERRCODE_INTERNAL_ERROR, "pg_segments was loaded without its trigger handler".into()),
    }
    pg_sys::Datum::from(0usize)
}
