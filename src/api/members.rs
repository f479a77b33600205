//! Static membership (add/remove; assigning: `import`) and reading (is_member, segments_of,
//! member_count). The polymorphic SQL signatures of SPEC §2 are thin SQL
//! wrappers (below) that pass keys as text; here they are cast back to the
//! source key's type, so lookups use the membership indexes.

use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use super::registration::require_registered;
use super::segment::{find, find_modifiable, Segment};
use super::{bad_argument, fail};
use crate::state::registry::{self, Registered};
use segments_lang::codegen::ident;
use crate::state::liveness::{live, LIVE};
use crate::pg::backend::current_user;
use crate::maintain;
use crate::state::cache::Memo;
use crate::state::counts;
use crate::state::privilege::as_owner;
use crate::pg::spi::{self, first, read_kept, result_column, text_datum};

pub(super) fn require_static(seg: &Segment) {
    if seg.kind != "static" {
        fail(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("segment \"{}\" is active: its members follow its filter", seg.name),
        );
    }
}

/// Adds the keys that exist in the source (of the segment's tenant, for a
/// source with tenants), their contacts locked against deletion until
/// commit (the DELETE's trigger could not see the members added); returns
/// how many were added.
fn add(seg: &Segment, reg: &Registered, keys: &[String]) -> i64 {
    let key = ident(&reg.key);
    let tenant = in_tenant(reg, "s", 3);
    as_owner(|| {
        let added = spi::get::<i64>(
            &format!(
                "WITH {live},
                 added AS (
                     INSERT INTO {membership} (segment_id, {key})
                     SELECT $1, s.{key} FROM {source} s
                      WHERE s.{key} OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]::{typ}[])
                        AND $1 OPERATOR(pg_catalog.=) {LIVE}{tenant}
                     FOR KEY SHARE OF s
                     ON CONFLICT DO NOTHING RETURNING 1),
                 n AS (SELECT pg_catalog.count(*) AS n FROM added),
                 {counted}
                 SELECT n FROM n",
                counted = counts::counted("SELECT $1, n FROM n WHERE n OPERATOR(pg_catalog.>) 0"),
                live = live("SELECT $1"),
                membership = reg.membership(),
                source = registry::qualified_name(reg.relid),
                typ = reg.key_type,
            ),
            &[seg.id.into(), keys.to_vec().into(), seg.tenant.clone().into()],
        )
        .unwrap_or(0);
        counts::fold(seg.id);
        if added > 0 {
            maintain::recompute::propagate(seg.id, reg, Some(keys));
        }
        added
    })
}

/// For a source with tenants, the condition that row `alias` of the source
/// is of the tenant of parameter `param` (as `state::tenant` writes
/// tenants); else nothing.
pub(super) fn in_tenant(reg: &Registered, alias: &str, param: usize) -> String {
    match &reg.tenant_column {
        Some(column) => format!(
            " AND {alias}.{}::pg_catalog.text OPERATOR(pg_catalog.=) ${param}::pg_catalog.text",
            ident(column)
        ),
        None => String::new(),
    }
}

fn remove(id: i64, reg: &Registered, keys: &[String]) -> i64 {
    let key = ident(&reg.key);
    as_owner(|| {
        let removed = spi::get::<i64>(
            &format!(
                "WITH gone AS (
                     DELETE FROM {membership} m WHERE m.segment_id OPERATOR(pg_catalog.=) $1
                        AND m.{key} OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]::{typ}[]) RETURNING 1),
                 n AS (SELECT pg_catalog.count(*) AS n FROM gone),
                 {counted}
                 SELECT n FROM n",
                counted = counts::counted("SELECT $1, OPERATOR(pg_catalog.-) n FROM n WHERE n OPERATOR(pg_catalog.>) 0"),
                membership = reg.membership(),
                typ = reg.key_type,
            ),
            &[id.into(), keys.to_vec().into()],
        )
        .unwrap_or(0);
        counts::fold(id);
        if removed > 0 {
            maintain::recompute::propagate(id, reg, Some(keys));
        }
        removed
    })
}

#[pg_extern(volatile, name = "_add_members")]
#[search_path(pg_catalog, pg_temp)]
fn add_members(name: &str, keys: Vec<Option<String>>) -> i64 {
    let seg = find_modifiable(name);
    require_static(&seg);
    let reg = require_registered(seg.source);
    add(&seg, &reg, &keys.into_iter().flatten().collect::<Vec<_>>())
}

#[pg_extern(volatile, name = "_remove_members")]
#[search_path(pg_catalog, pg_temp)]
fn remove_members(name: &str, keys: Vec<Option<String>>) -> i64 {
    let seg = find_modifiable(name);
    require_static(&seg);
    let reg = require_registered(seg.source);
    remove(seg.id, &reg, &keys.into_iter().flatten().collect::<Vec<_>>())
}

/// How is_member answers for one segment name and role: the segment, and
/// the probe of its membership table.
struct Probe {
    id: i64,
    sql: String,
}

thread_local! {
    /// Lookups by (role, tenant and application user acted for, segment
    /// name): finding the segment and its source
    /// costs two catalog queries, and is_member may run for every row of a
    /// query. Emptied whenever the segment catalog, a role or a role
    /// membership changes (`state::cache`).
    static LOOKUPS: Memo<(pg_sys::Oid, Option<String>, Option<String>, String), Probe> = Memo::new();
    /// segments_of's statement by (key type, source if named): finding the
    /// source and its registration costs two catalog queries. The statement
    /// itself runs as the caller, so nothing in it depends on the role.
    static SEGMENTS_OF: Memo<(pg_sys::Oid, Option<pg_sys::Oid>), String> = Memo::new();
}

fn lookup(name: &str) -> Rc<Probe> {
    let role = current_user();
    let acting = (crate::state::tenant::current(), crate::state::tenant::app_user());
    LOOKUPS.with(|l| l.get_or((role, acting.0, acting.1, name.to_string()), || {
        let seg = find(name);
        let reg = require_registered(seg.source);
        Probe {
            id: seg.id,
            sql: format!(
                "SELECT EXISTS (SELECT FROM {} m WHERE m.segment_id OPERATOR(pg_catalog.=) $1 AND m.{} OPERATOR(pg_catalog.=) $2::pg_catalog.text::{})",
                reg.membership(),
                ident(&reg.key),
                reg.key_type
            ),
        }
    }))
}

#[pg_extern(stable, name = "_is_member")]
// No SET search_path (it would cost every call): this runs only
// schema-qualified SQL. The probe runs as the owner, past the membership
// table's row security: the caller's right to see the segment is what
// `lookup` checked.
fn is_member(name: &str, key: &str) -> bool {
    let l = lookup(name);
    as_owner(|| {
        Spi::connect(|_| {
            read_kept(&l.sql, &[pg_sys::INT8OID, pg_sys::TEXTOID], &[l.id.into(), text_datum(key)]);
            first::<bool>(1).unwrap_or(false)
        })
    })
}

/// The source a key belongs to when none is named: the only registered
/// source, or the only one whose key has the key's type.
fn source_for(key_type: pg_sys::Oid) -> pg_sys::Oid {
    let candidates = Spi::connect(|_| {
        read_kept(
            "SELECT pg_catalog.array_agg(relid::pg_catalog.oid) FROM segments.source
              WHERE key_type OPERATOR(pg_catalog.=) $1 OR (SELECT pg_catalog.count(*) FROM segments.source) OPERATOR(pg_catalog.=) 1",
            &[pg_sys::OIDOID],
            &[key_type.into()],
        );
        first::<Vec<pg_sys::Oid>>(1).unwrap_or_default()
    });
    match candidates.as_slice() {
        [one] => *one,
        [] => bad_argument("no registered source has a key of this type".into()),
        _ => bad_argument("several sources have keys of this type: name the source".into()),
    }
}

fn segments_of_statement(key_type: pg_sys::Oid, source: Option<pg_sys::Oid>) -> Rc<String> {
    SEGMENTS_OF.with(|s| s.get_or((key_type, source), || {
        let reg = require_registered(source.unwrap_or_else(|| source_for(key_type)));
        format!(
            "SELECT d.name FROM {} m JOIN segments.segment_def d ON d.id OPERATOR(pg_catalog.=) m.segment_id
              WHERE m.{} OPERATOR(pg_catalog.=) $1::pg_catalog.text::{}
                AND segments.can_see_as($2, d.shared, d.owner, d.app_user) AND segments.in_tenant(d.tenant)
              ORDER BY d.name",
            reg.membership(),
            ident(&reg.key),
            reg.key_type
        )
    }))
}

#[pg_extern(stable, name = "_segments_of")]
// No SET search_path (it would cost every call): this runs only
// schema-qualified SQL. It reads the membership table as the owner (no
// role may read it whole: `sql/bootstrap.sql`), keeping the segments the
// caller may see.
fn segments_of(key: Option<&str>, key_type: pg_sys::Oid, source: Option<pg_sys::Oid>) -> SetOfIterator<'static, String> {
    // A NULL key (a LEFT JOIN's missing contact) is in no segment.
    let Some(key) = key else { return SetOfIterator::new(vec![]) };
    let sql = segments_of_statement(key_type, source);
    let caller = current_user();
    let names: Vec<String> = as_owner(|| {
        Spi::connect(|_| {
            read_kept(&sql, &[pg_sys::TEXTOID, pg_sys::OIDOID], &[text_datum(key), caller.into()]);
            result_column::<String>(1).into_iter().flatten().collect()
        })
    });
    SetOfIterator::new(names)
}

#[pg_extern(stable)]
// No SET search_path (it would cost every call): this runs only
// schema-qualified SQL. The caller's right to see the segment is what `find`
// checked; the deltas are read as the owner.
fn member_count(name: &str) -> i64 {
    let id = find(name).id;
    as_owner(|| counts::count(id))
}

/// The members of segment `id` (key as text, entered_at), none unless the
/// caller may see it: what `segments.members` lists, one segment at a time,
/// read as the owner (no role may read a membership table whole).
#[pg_extern(stable, name = "_members_of")]
#[search_path(pg_catalog, pg_temp)]
fn members_of(
    id: i64,
) -> TableIterator<'static, (name!(key, Option<String>), name!(entered_at, Option<pgrx::datum::TimestampWithTimeZone>))> {
    // As the caller: the catalog's row security says whether it may see it.
    let source = spi::get::<pg_sys::Oid>(
        "SELECT source::pg_catalog.oid FROM segments.segment_def WHERE id OPERATOR(pg_catalog.=) $1",
        &[id.into()],
    );
    let Some(reg) = source.and_then(registry::registered) else { return TableIterator::new(vec![]) };
    let sql = format!(
        "SELECT m.{}::pg_catalog.text, m.entered_at FROM {} m WHERE m.segment_id OPERATOR(pg_catalog.=) $1",
        ident(&reg.key),
        reg.membership()
    );
    let rows: Vec<_> = as_owner(|| {
        Spi::connect(|_| {
            read_kept(&sql, &[pg_sys::INT8OID], &[id.into()]);
            result_column::<String>(1).into_iter().zip(result_column::<pgrx::datum::TimestampWithTimeZone>(2)).collect()
        })
    });
    TableIterator::new(rows)
}

extension_sql_file!("../../sql/reading.sql", name = "polymorphic_wrappers", finalize);
