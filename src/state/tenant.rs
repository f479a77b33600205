//! Tenants and application users: which customer account and which of its
//! users the application acts for (the settings `segments.tenant` and
//! `segments.app_user`, set per transaction through a pooler), and which
//! tenant a segment of a source with a tenant column belongs to (SPEC §7).

use super::registry::Registered;
use crate::pg::error::{bad_argument, fail_hint, Code};
use crate::pg::spi;

/// The tenant the application acts for, if `segments.tenant` is set.
pub fn current() -> Option<String> {
    crate::pg::backend::setting(c"segments.tenant").filter(|t| !t.is_empty())
}

/// The application user the application acts for, if `segments.app_user`
/// is set.
pub fn app_user() -> Option<String> {
    crate::pg::backend::setting(c"segments.app_user").filter(|u| !u.is_empty())
}

/// The tenant a new segment of `reg`'s source belongs to: `given`, else the
/// setting, as the tenant column's type writes it (`'007'` of an integer
/// column is `7`); None for a source without tenants.
pub fn of_new_segment(reg: &Registered, given: Option<&str>) -> Option<String> {
    let Some(column) = &reg.tenant_column else {
        if given.is_some() || current().is_some() {
            bad_argument(format!("{} has no tenant column: its segments belong to no tenant", reg.source));
        }
        return None;
    };
    let Some(tenant) = given.map(str::to_string).or_else(current).filter(|t| !t.is_empty()) else {
        fail_hint(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("the segments of {} belong to a tenant (column \"{column}\")", reg.source),
            "pass tenant => '…', or SET LOCAL segments.tenant",
        )
    };
    Some(canonical(reg, column, &tenant))
}

/// `value` as the tenant column's type writes it; the cast's ERROR if it is
/// not a value of that type.
fn canonical(reg: &Registered, column: &str, value: &str) -> String {
    let ty = spi::get::<String>(
        "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
          WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attname OPERATOR(pg_catalog.=) $2",
        &[reg.relid.into(), column.into()],
    )
    .unwrap_or_else(|| bad_argument(format!("tenant column \"{column}\" of {} is missing", reg.source)));
    spi::get::<String>(&format!("SELECT ($1::pg_catalog.text)::{ty}::pg_catalog.text"), &[value.into()])
        .unwrap_or_else(|| bad_argument("a tenant is not NULL".into()))
}
