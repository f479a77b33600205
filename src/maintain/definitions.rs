//! Which active segments a write must maintain, and their compiled
//! definitions: the segments of a source that read a table, those that
//! reference them through `IN SEGMENT` (dependencies first), the
//! time-relative ones for the sweep.

use std::rc::Rc;

use pgrx::prelude::*;
use segments_lang::model::Catalog;
use segments_lang::Compiled;

use crate::pg::error::raise;
use crate::pg::spi;
use crate::state::cache::Memo;
use crate::state::registry::{self, Registered};

/// An active segment to recompute, with what the recompute needs.
pub struct Target {
    pub id: i64,
    /// Dependency level: a segment comes after those it references.
    pub depth: i32,
    pub name: String,
    pub definition: String,
    pub track_changes: bool,
    pub shared: bool,
    /// The tenant it belongs to, if its source has tenants.
    pub tenant: Option<String>,
}

thread_local! {
    /// Compiled definitions by segment id and definition text: recompiling on
    /// every statement would cost more than the recompute of one contact.
    static COMPILED: Memo<(i64, String), Compiled> = Memo::new();
    /// The catalogs stored definitions compile against, by source and
    /// tenant: a tenant's ten segments need one, not ten times the queries.
    /// Definitions compile as the extension owner, whoever writes.
    static CATALOGS: Memo<(pg_sys::Oid, Option<String>), Catalog> = Memo::new();
}

/// The stored definition of segment `id` of `reg`'s source (of `tenant`),
/// compiled (once per catalog generation).
pub fn compiled(id: i64, definition: &str, tenant: Option<&str>, reg: &Registered) -> Rc<Compiled> {
    COMPILED.with(|m| {
        m.get_or((id, definition.to_string()), || {
            let tenant = tenant.map(str::to_string);
            let cat = CATALOGS
                .with(|c| c.get_or((reg.relid, tenant.clone()), || registry::for_source(reg, tenant.as_deref())));
            segments_lang::compile(definition, &cat, &reg.key).unwrap_or_else(|d| raise(&d))
        })
    })
}

/// Where the sweep of segment `id` starts: the horizon its last sweep or
/// fill recorded (`sweep_horizon`).
pub fn swept_since(id: i64) -> String {
    format!(
        "COALESCE((SELECT d.swept_at FROM segments.segment_def d WHERE d.id OPERATOR(pg_catalog.=) {id}), pg_catalog.now())"
    )
}

/// What a sweep or fill that starts now records as the start of the next
/// sweep: now, or the start of the oldest transaction in progress in this
/// database if earlier. A writer decides memberships as of its own `now()`
/// (its start) and may commit after a sweep that could not see its rows;
/// what crosses a boundary after its start is then swept again by the next
/// sweep, which sees them. Read before the sweep's or fill's own snapshot,
/// so that every transaction it cannot see is one in progress here.
pub fn sweep_horizon() -> pgrx::datum::TimestampWithTimeZone {
    // The activity snapshot is kept for the transaction: take a fresh one.
    spi::run("SELECT pg_catalog.pg_stat_clear_snapshot()", &[]);
    spi::get(
        "SELECT LEAST(pg_catalog.now(), pg_catalog.min(a.xact_start)) FROM pg_catalog.pg_stat_activity a
          WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
            AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
            AND a.backend_type OPERATOR(pg_catalog.<>) 'autovacuum worker'",
        &[],
    )
    .expect("now() is never NULL")
}

impl Target {
    /// Its definition, compiled.
    pub fn compiled(&self, reg: &Registered) -> Rc<Compiled> {
        compiled(self.id, &self.definition, self.tenant.as_deref(), reg)
    }
}

/// Active segments of `source` (of `tenant`'s, for a source with tenants)
/// that read `table`, then every active segment that references one of
/// them, dependencies first.
pub fn targets_of(source: pg_sys::Oid, table: pg_sys::Oid, tenant: Option<&str>) -> Vec<Target> {
    // A tenant's segments through the index on (source, tenant).
    let of_tenant = if tenant.is_some() { "d.tenant OPERATOR(pg_catalog.=) $3" } else { "d.tenant IS NULL AND $3 IS NULL" };
    closure(
        &format!(
            "SELECT d.id, 0 FROM segments.segment_def d
              WHERE d.source OPERATOR(pg_catalog.=) $1 AND {of_tenant} AND d.kind OPERATOR(pg_catalog.=) 'active'
                AND EXISTS (SELECT FROM segments.segment_read r
                             WHERE r.segment_id OPERATOR(pg_catalog.=) d.id AND r.relid OPERATOR(pg_catalog.=) $2)"
        ),
        &[source.into(), table.into(), tenant.into()],
    )
}

/// The time-relative active segments of `source` and the active segments
/// that reference them: what refresh_due() has to look at.
pub fn time_relative(source: pg_sys::Oid) -> Vec<Target> {
    closure(
        "SELECT d.id, 0 FROM segments.segment_def d
          WHERE d.source OPERATOR(pg_catalog.=) $1 AND d.kind OPERATOR(pg_catalog.=) 'active' AND d.time_relative",
        &[source.into()],
    )
}

/// The active segments that reference segment `id`, directly or not,
/// dependencies first.
pub fn dependents(id: i64) -> Vec<Target> {
    closure("SELECT segment_id, 1 FROM segments.dependency WHERE depends_on OPERATOR(pg_catalog.=) $1", &[id.into()])
}

/// The `seed` segments (rows of id and depth) and all the segments that
/// reference them through `IN SEGMENT`, active ones only, each after the
/// segments it references.
fn closure(seed: &str, args: &[pgrx::datum::DatumWithOid<'_>]) -> Vec<Target> {
    let sql = format!(
        "WITH RECURSIVE hit(id, depth) AS (
             {seed}
             UNION ALL
             SELECT x.segment_id, hit.depth OPERATOR(pg_catalog.+) 1
               FROM segments.dependency x JOIN hit ON x.depends_on OPERATOR(pg_catalog.=) hit.id
              WHERE hit.depth OPERATOR(pg_catalog.<) 1000)
         SELECT d.id, d.name, d.definition, d.track_changes, d.shared, h.depth, d.tenant
           FROM (SELECT id, max(depth) AS depth FROM hit GROUP BY id) h
           JOIN segments.segment_def d ON d.id OPERATOR(pg_catalog.=) h.id
          WHERE d.kind OPERATOR(pg_catalog.=) 'active'
          ORDER BY h.depth, d.id"
    );
    Spi::connect(|client| {
        client
            .select(&sql, None, args)
            .expect("reading the segments to maintain")
            .map(|r| Target {
                id: r.get(1).ok().flatten().unwrap_or_default(),
                name: r.get(2).ok().flatten().unwrap_or_default(),
                definition: r.get(3).ok().flatten().unwrap_or_default(),
                track_changes: r.get(4).ok().flatten().unwrap_or(false),
                shared: r.get(5).ok().flatten().unwrap_or(true),
                depth: r.get(6).ok().flatten().unwrap_or(0),
                tenant: r.get(7).ok().flatten(),
            })
            .collect()
    })
}
