//! The one way the extension runs SQL. A failure is an ERROR, never a
//! default: `get` answers None only for no row or a NULL.
//!
//! The write path and the read functions run the same few statements over
//! and over: those run with kept generic plans (`run_kept`, `read_kept`),
//! since planning them each time would cost more than running them.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use super::error::{fail, Code as PgSqlErrorCode};

/// The first column of the first row `sql` returns; None for no row or
/// NULL. Any other failure is an ERROR.
pub fn get<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid<'_>]) -> Option<T> {
    Spi::connect_mut(|_| {
        execute_once(sql, args, 1);
        first::<T>(1)
    })
}

/// Runs `sql`; a failure is an ERROR.
pub fn run(sql: &str, args: &[DatumWithOid<'_>]) {
    Spi::connect_mut(|_| execute_once(sql, args, 0));
}

/// Runs `sql` once (at most `limit` rows, 0: all), seeing what the
/// transaction wrote so far. Not pgrx's `update`, which takes a transaction
/// id first: a reading function would then write a commit record, and fail
/// on a hot standby. Must run inside an SPI connection.
fn execute_once(sql: &str, args: &[DatumWithOid<'_>], limit: i64) {
    let text = std::ffi::CString::new(sql).expect("SQL has no NUL byte");
    let mut types: Vec<pg_sys::Oid> = args.iter().map(DatumWithOid::oid).collect();
    let mut values: Vec<pg_sys::Datum> =
        args.iter().map(|a| a.datum().map_or(pg_sys::Datum::from(0), |d| d.sans_lifetime())).collect();
    let nulls: Vec<std::ffi::c_char> =
        args.iter().map(|a| if a.datum().is_some() { b' ' } else { b'n' } as std::ffi::c_char).collect();
    // SAFETY: a connected SPI context; one type, value and null flag per argument.
    let rc = unsafe {
        pg_sys::SPI_execute_with_args(
            text.as_ptr(),
            args.len() as i32,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_ptr(),
            false,
            limit,
        )
    };
    if rc < 0 {
        fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("SPI_execute_with_args failed ({rc}): {sql}"));
    }
}

/// Every row of `sql`, each made by `row` from the row's columns.
pub fn rows<T>(sql: &str, args: &[DatumWithOid<'_>], row: impl Fn(&pgrx::spi::SpiHeapTupleData) -> T) -> Vec<T> {
    Spi::connect(|client| match client.select(sql, None, args) {
        Ok(table) => table.map(|r| row(&r)).collect(),
        Err(e) => fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("{e}: {sql}")),
    })
}

/// Column `n` (1-based) of an SPI row; NULL and a failure to convert are
/// None (for `rows`).
pub fn column<T: FromDatum + IntoDatum>(r: &pgrx::spi::SpiHeapTupleData, n: usize) -> Option<T> {
    r.get::<T>(n).ok().flatten()
}

thread_local! {
    /// Kept generic plans of the statements every write runs, by SQL text.
    /// Generic, because the plan cache would otherwise keep re-planning them
    /// (custom plans for each key array), which cost several times more than
    /// running them. PostgreSQL's plan cache re-validates them after DDL.
    static PLANS: RefCell<HashMap<String, pg_sys::SPIPlanPtr>> = RefCell::new(HashMap::new());
}

const KEPT_PLANS: usize = 1000;

/// Runs `sql` with a kept generic plan; the caller reads `SPI_tuptable`.
/// Must run inside an SPI connection (`Spi::connect_mut`).
pub fn run_kept(sql: &str, types: &[pg_sys::Oid], args: &[pg_sys::Datum]) {
    execute(sql, types, args, false)
}

/// `run_kept` for a statement that only reads, under the active snapshot
/// (SPI's read-only mode: no new snapshot, no command counter increment).
pub fn read_kept(sql: &str, types: &[pg_sys::Oid], args: &[pg_sys::Datum]) {
    execute(sql, types, args, true)
}

fn execute(sql: &str, types: &[pg_sys::Oid], args: &[pg_sys::Datum], read_only: bool) {
    let cached = PLANS.with(|p| p.borrow().get(sql).copied());
    let plan = cached.unwrap_or_else(|| {
        let text = std::ffi::CString::new(sql).expect("SQL has no NUL byte");
        let mut types = types.to_vec();
        // SAFETY: plain SPI calls inside a connected SPI context.
        let plan = unsafe {
            let plan = pg_sys::SPI_prepare_cursor(
                text.as_ptr(),
                types.len() as i32,
                types.as_mut_ptr(),
                pg_sys::CURSOR_OPT_GENERIC_PLAN as i32,
            );
            if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
                fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("could not prepare: {sql}"));
            }
            plan
        };
        PLANS.with(|p| {
            let mut plans = p.borrow_mut();
            if plans.len() >= KEPT_PLANS {
                // SAFETY: plans kept by this backend, no longer referenced.
                plans.drain().for_each(|(_, old)| unsafe {
                    pg_sys::SPI_freeplan(old);
                });
            }
            plans.insert(sql.to_string(), plan);
        });
        plan
    });
    let mut values = args.to_vec();
    let nulls = vec![b' ' as std::ffi::c_char; args.len()];
    // SAFETY: arguments match the plan's parameter types.
    let rc = unsafe { pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), nulls.as_ptr(), read_only, 0) };
    if rc < 0 {
        fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("SPI_execute_plan failed ({rc}): {sql}"));
    }
}

/// Column `n` (1-based) of every row of the last kept statement's result.
pub fn result_column<T: FromDatum>(n: i32) -> Vec<Option<T>> {
    // SAFETY: reads the result of the statement just run in this SPI context.
    unsafe {
        let table = pg_sys::SPI_tuptable;
        if table.is_null() {
            return vec![];
        }
        (0..(*table).numvals as usize)
            .map(|i| {
                let mut isnull = false;
                let datum = pg_sys::SPI_getbinval(*(*table).vals.add(i), (*table).tupdesc, n, &mut isnull);
                T::from_datum(datum, isnull)
            })
            .collect()
    }
}

pub fn text_array(keys: &[String]) -> pg_sys::Datum {
    keys.to_vec().into_datum().expect("a text[] datum")
}

/// Column `n` (1-based) of the first row of the last kept statement's result.
pub fn first<T: FromDatum>(n: i32) -> Option<T> {
    result_column::<T>(n).into_iter().next().flatten()
}

pub fn text_datum(text: &str) -> pg_sys::Datum {
    text.into_datum().expect("a text datum")
}

/// Registers a trigger's transition tables (`new_rows`, `old_rows`) with
/// the SPI connection `f` runs in, then runs `f`.
pub fn with_transition_tables<R>(trigger: &super::trigger::Trigger<'_>, f: impl FnOnce() -> R) -> R {
    Spi::connect_mut(|_| {
        // SAFETY: trigger data of the running trigger, registered with the
        // SPI connection just opened.
        unsafe { pg_sys::SPI_register_trigger_data(trigger.data()) };
        f()
    })
}

/// Runs a statement without parameters under the latest snapshot, also in
/// REPEATABLE READ: for writes that must reach rows committed after the
/// transaction's snapshot was taken (as PostgreSQL's own foreign key
/// actions do). Must run inside an SPI connection.
pub fn run_latest(sql: &str) {
    run_latest_with(sql, &[], &[])
}

/// `run_latest` with parameters of the types `types`.
pub fn run_latest_with(sql: &str, types: &[pg_sys::Oid], args: &[pg_sys::Datum]) {
    let text = std::ffi::CString::new(sql).expect("SQL has no NUL byte");
    let mut types = types.to_vec();
    let mut values = args.to_vec();
    let nulls = vec![b' ' as std::ffi::c_char; args.len()];
    // SAFETY: plain SPI calls inside a connected SPI context; arguments
    // match the parameter types; the plan is freed with the SPI connection.
    let rc = unsafe {
        let plan = pg_sys::SPI_prepare(text.as_ptr(), types.len() as i32, types.as_mut_ptr());
        if plan.is_null() {
            fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("could not prepare: {sql}"));
        }
        pg_sys::SPI_execute_snapshot(
            plan,
            values.as_mut_ptr(),
            nulls.as_ptr(),
            pg_sys::GetLatestSnapshot(),
            std::ptr::null_mut(),
            false,
            false,
            0,
        )
    };
    if rc < 0 {
        fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("SPI_execute_snapshot failed ({rc}): {sql}"));
    }
}
