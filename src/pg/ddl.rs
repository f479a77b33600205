//! The event trigger that sees schema changes before they run
//! (`ddl_command_start`): its C entry point, and what the statement's parse
//! tree says, resolved to tables and columns. Only a C function sees the
//! parse tree: `DROP … CASCADE` and `RESTRICT` look alike afterwards.

use std::ffi::CStr;
use std::sync::OnceLock;

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::error::{fail, Code};

/// What a `DROP TABLE` or `ALTER TABLE` is about to do to existing tables
/// (tables that do not exist, or other kinds of objects, are left out).
#[derive(Debug)]
pub enum SchemaChange {
    DropTables { tables: Vec<pg_sys::Oid>, cascade: bool },
    DropColumn { table: pg_sys::Oid, column: String, cascade: bool },
    AlterColumnType { table: pg_sys::Oid, column: String },
    RenameColumn { table: pg_sys::Oid, column: String },
    SetUnlogged { table: pg_sys::Oid },
}

/// What `segments.schema_change_start()` calls; set once, from `_PG_init`.
static HANDLER: OnceLock<fn(&[SchemaChange])> = OnceLock::new();

pub fn set_handler(handler: fn(&[SchemaChange])) {
    let _ = HANDLER.set(handler);
}

/// The table a RangeVar names, if it exists (no lock: the statement takes
/// its own).
///
/// # Safety
/// `rv` is null or a RangeVar of the parse tree.
unsafe fn table_of(rv: *mut pg_sys::RangeVar) -> Option<pg_sys::Oid> {
    if rv.is_null() {
        return None;
    }
    // SAFETY: a name lookup, missing_ok.
    let oid = unsafe {
        pg_sys::RangeVarGetRelidExtended(rv, pg_sys::NoLock as i32, pg_sys::RVROption::RVR_MISSING_OK as u32, None, std::ptr::null_mut())
    };
    (oid != pg_sys::Oid::INVALID).then_some(oid)
}

/// # Safety
/// `s` is null or a C string of the parse tree.
unsafe fn text(s: *const std::ffi::c_char) -> String {
    if s.is_null() {
        String::new()
    } else {
        // SAFETY: a NUL-terminated string.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }
}

/// # Safety
/// `list` is null or a List of pointers.
unsafe fn pointers(list: *mut pg_sys::List) -> Vec<*mut std::ffi::c_void> {
    if list.is_null() {
        return vec![];
    }
    // SAFETY: a List's cells.
    unsafe { (0..(*list).length as usize).map(|i| (*(*list).elements.add(i)).ptr_value).collect() }
}

/// # Safety
/// `node` is a node of a `ddl_command_start` parse tree.
unsafe fn changes(node: *mut pg_sys::Node) -> Vec<SchemaChange> {
    let mut out = vec![];
    // SAFETY: each node read as the type its tag says.
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_DropStmt => {
                let stmt = node as *mut pg_sys::DropStmt;
                if matches!((*stmt).removeType, pg_sys::ObjectType::OBJECT_TABLE) {
                    let tables = pointers((*stmt).objects)
                        .into_iter()
                        .filter_map(|names| table_of(pg_sys::makeRangeVarFromNameList(names as *mut pg_sys::List)))
                        .collect();
                    out.push(SchemaChange::DropTables {
                        tables,
                        cascade: (*stmt).behavior == pg_sys::DropBehavior::DROP_CASCADE,
                    });
                }
            }
            pg_sys::NodeTag::T_AlterTableStmt => {
                let stmt = node as *mut pg_sys::AlterTableStmt;
                let Some(table) = table_of((*stmt).relation) else { return out };
                for cmd in pointers((*stmt).cmds) {
                    let cmd = cmd as *mut pg_sys::AlterTableCmd;
                    let column = text((*cmd).name);
                    match (*cmd).subtype {
                        pg_sys::AlterTableType::AT_DropColumn => out.push(SchemaChange::DropColumn {
                            table,
                            column,
                            cascade: (*cmd).behavior == pg_sys::DropBehavior::DROP_CASCADE,
                        }),
                        pg_sys::AlterTableType::AT_AlterColumnType => {
                            out.push(SchemaChange::AlterColumnType { table, column })
                        }
                        pg_sys::AlterTableType::AT_SetUnLogged => out.push(SchemaChange::SetUnlogged { table }),
                        _ => {}
                    }
                }
            }
            pg_sys::NodeTag::T_RenameStmt => {
                let stmt = node as *mut pg_sys::RenameStmt;
                if matches!((*stmt).renameType, pg_sys::ObjectType::OBJECT_COLUMN) {
                    if let Some(table) = table_of((*stmt).relation) {
                        out.push(SchemaChange::RenameColumn { table, column: text((*stmt).subname) });
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_segments_schema_change_start() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// `segments.schema_change_start()`, the `ddl_command_start` event trigger.
///
/// # Safety
/// Called by PostgreSQL's function manager.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn segments_schema_change_start(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let context = unsafe { (*fcinfo).context };
    let is_event = !context.is_null() && unsafe { (*context).type_ } == pg_sys::NodeTag::T_EventTriggerData;
    if !is_event {
        fail(Code::ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED, "segments.schema_change_start() is an event trigger".into());
    }
    // SAFETY: the event trigger's data and parse tree, valid for the call.
    let found = unsafe {
        let parsetree = (*(context as *mut pg_sys::EventTriggerData)).parsetree;
        if parsetree.is_null() { vec![] } else { changes(parsetree) }
    };
    if !found.is_empty() {
        if let Some(handle) = HANDLER.get() {
            handle(&found);
        }
    }
    pg_sys::Datum::from(0usize)
}
