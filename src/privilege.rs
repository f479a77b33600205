//! Who is calling, what they may do, and acting as the extension owner.
//!
//! The API functions run with the caller's identity, check its rights
//! explicitly, and switch to the extension owner only for the writes to the
//! catalog and membership tables, the way PostgreSQL itself runs referential
//! integrity checks and REFRESH MATERIALIZED VIEW. An error anywhere restores
//! the caller's identity with the (sub)transaction abort.

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::api::fail;

thread_local! {
    /// The extension owner, looked up once per backend and forgotten when
    /// the segment catalog is invalidated (e.g. the extension was dropped).
    static OWNER: std::cell::Cell<pg_sys::Oid> = const { std::cell::Cell::new(pg_sys::Oid::INVALID) };
}

pub fn forget_owner() {
    OWNER.with(|o| o.set(pg_sys::Oid::INVALID));
}

fn extension_owner() -> pg_sys::Oid {
    let known = OWNER.with(|o| o.get());
    if known != pg_sys::Oid::INVALID {
        return known;
    }
    let owner = Spi::get_one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_segments'",
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| fail(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, "extension pg_segments is not installed".into()));
    OWNER.with(|o| o.set(owner));
    owner
}

/// Runs `f` as the extension owner, in a security-restricted context.
pub fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    let owner = extension_owner();
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context: i32 = 0;
    // SAFETY: plain reads and writes of the backend's current user; restored
    // below, or by the transaction abort on error.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    let r = f();
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    r
}

/// Superuser or member of `segments_admin`.
pub fn is_admin() -> bool {
    Spi::get_one::<bool>("SELECT segments.is_admin()").ok().flatten().unwrap_or(false)
}

/// The caller owns `table` (or is a member of its owner), or is an admin.
pub fn require_table_owner(table: pg_sys::Oid, what: &str) {
    let owns = Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.pg_has_role(c.relowner, 'MEMBER') FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
        &[table.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    if !owns && !is_admin() {
        fail(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, format!("must own table {} to {what}", regclass_text(table)));
    }
}

/// The caller may read `table`.
pub fn require_select(table: pg_sys::Oid) {
    let ok = Spi::get_one_with_args::<bool>("SELECT pg_catalog.has_table_privilege($1, 'SELECT')", &[table.into()])
        .ok()
        .flatten()
        .unwrap_or(false);
    if !ok {
        fail(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, format!("permission denied for table {}", regclass_text(table)));
    }
}

/// `schema.table` as PostgreSQL prints a regclass (quoted where needed).
pub fn regclass_text(oid: pg_sys::Oid) -> String {
    Spi::get_one_with_args::<String>("SELECT $1::pg_catalog.regclass::pg_catalog.text", &[oid.into()])
        .ok()
        .flatten()
        .unwrap_or_else(|| format!("oid {}", oid.to_u32()))
}

/// Runs `f` with `search_path = pg_catalog, pg_temp`, restored afterwards
/// (or by the abort on error): what `SET search_path` on a function does,
/// for the trigger, which pins it only when it has SQL to run, because a
/// function-level SET would cost every row and every statement.
pub fn pinned_search_path<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: a GUC nest level opened and closed around `f`, as
    // fmgr_security_definer does.
    let level = unsafe {
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        level
    };
    let r = f();
    unsafe { pg_sys::AtEOXact_GUC(true, level) };
    r
}
