//! Who is calling, what they may do, and acting as the extension owner.
//!
//! The API functions run with the caller's identity, check its rights
//! explicitly, and switch to the extension owner only for the writes to the
//! catalog and membership tables, the way PostgreSQL itself runs referential
//! integrity checks and REFRESH MATERIALIZED VIEW. An error anywhere restores
//! the caller's identity with the (sub)transaction abort.

use pgrx::prelude::*;

use super::cache::Memo;
use crate::pg::error::{fail, Code as PgSqlErrorCode};
use crate::pg::guard::AsUser;
use crate::pg::spi;

thread_local! {
    /// The extension owner, looked up once per catalog generation (the
    /// extension may have been dropped and created again).
    static OWNER: Memo<(), pg_sys::Oid> = Memo::new();
}

fn extension_owner() -> pg_sys::Oid {
    *OWNER.with(|o| {
        o.get_or((), || {
            spi::get::<pg_sys::Oid>(
                "SELECT extowner FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_segments'",
                &[],
            )
            .unwrap_or_else(|| {
                fail(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, "extension pg_segments is not installed".into())
            })
        })
    })
}

/// Runs `f` as the extension owner, in a security-restricted context.
pub fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    let _owner = AsUser::switch_to(extension_owner());
    f()
}

/// Superuser or member of `segments_admin`.
pub fn is_admin() -> bool {
    spi::get::<bool>("SELECT segments.is_admin()", &[]).unwrap_or(false)
}

/// The caller owns `table` (or is a member of its owner), or is an admin.
pub fn require_table_owner(table: pg_sys::Oid, what: &str) {
    let owns = spi::get::<bool>(
        "SELECT pg_catalog.pg_has_role(c.relowner, 'MEMBER') FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
        &[table.into()],
    )
    .unwrap_or(false);
    if !owns && !is_admin() {
        fail(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, format!("must own table {} to {what}", regclass_text(table)));
    }
}

/// The caller may create triggers on `table`: owns it (or is a member of
/// its owner), holds TRIGGER on it, or is an admin. Registering a table
/// installs maintenance triggers on it as the extension owner, so the
/// caller must be able to do that much itself.
pub fn require_trigger_right(table: pg_sys::Oid, what: &str) {
    let may = spi::get::<bool>(
        "SELECT pg_catalog.pg_has_role(c.relowner, 'MEMBER') OR pg_catalog.has_table_privilege(c.oid, 'TRIGGER')
           FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
        &[table.into()],
    )
    .unwrap_or(false);
    if !may && !is_admin() {
        fail(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must own table {} (or hold TRIGGER on it) to {what}", regclass_text(table)),
        );
    }
}

/// The caller may read `table`.
pub fn require_select(table: pg_sys::Oid) {
    let ok = spi::get::<bool>("SELECT pg_catalog.has_table_privilege($1, 'SELECT')", &[table.into()])
        .unwrap_or(false);
    if !ok {
        fail(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, format!("permission denied for table {}", regclass_text(table)));
    }
}

/// `schema.table` as PostgreSQL prints a regclass (quoted where needed).
pub fn regclass_text(oid: pg_sys::Oid) -> String {
    spi::get::<String>("SELECT $1::pg_catalog.regclass::pg_catalog.text", &[oid.into()])
        .unwrap_or_else(|| format!("oid {}", oid.to_u32()))
}

pub use crate::pg::guard::pinned_search_path;
