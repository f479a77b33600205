//! Which active segments a write must maintain, and their compiled
//! definitions: the segments of a source that read a table, those that
//! reference them through `IN SEGMENT` (dependencies first), the
//! time-relative ones for the sweep.

use std::rc::Rc;

use pgrx::prelude::*;
use segments_lang::model::Catalog;
use segments_lang::Compiled;

use crate::pg::error::raise;
use crate::pg::{heap, spi};
use crate::state::cache::{segment_def_oid, Memo};
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
    /// What those catalogs share, by source (`registry::shape`): a tenant's
    /// catalog then costs one query, for its segments.
    static SHAPES: Memo<pg_sys::Oid, Catalog> = Memo::new();
    /// Definitions of tenants' segments compiled once per source and text,
    /// without a tenant: what a tenant's part reads of them (the columns,
    /// lookups, row-locality, the predicate without the tenant) is the same
    /// for every tenant. None for one that references segments, which
    /// resolve within a tenant.
    static SHARED: Memo<(pg_sys::Oid, String), Option<Rc<Compiled>>> = Memo::new();
}

/// The stored definition of segment `id` of `reg`'s source (of `tenant`),
/// compiled (once per catalog generation).
pub fn compiled(id: i64, definition: &str, tenant: Option<&str>, reg: &Registered) -> Rc<Compiled> {
    COMPILED.with(|m| {
        m.get_or((id, definition.to_string()), || {
            let tenant = tenant.map(str::to_string);
            let cat = CATALOGS.with(|c| {
                c.get_or((reg.relid, tenant.clone()), || {
                    registry::with_segments((*shape(reg)).clone(), reg, tenant.as_deref())
                })
            });
            segments_lang::compile(definition, &cat, &reg.key).unwrap_or_else(|d| raise(&d))
        })
    })
}

/// The catalog shape of `reg`'s source (`SHAPES`).
fn shape(reg: &Registered) -> Rc<Catalog> {
    SHAPES.with(|s| s.get_or(reg.relid, || registry::shape(reg)))
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
    crate::pg::backend::clear_activity_snapshot();
    // pg_stat_activity's function without the view's joins, which cost a
    // new connection's first creation more to plan than to run.
    spi::get(
        "SELECT LEAST(pg_catalog.now(), pg_catalog.min(a.xact_start)) FROM pg_catalog.pg_stat_get_activity(NULL) a
          WHERE a.datid OPERATOR(pg_catalog.=) $1
            AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
            AND a.backend_type OPERATOR(pg_catalog.<>) 'autovacuum worker'",
        &[crate::pg::backend::database().into()],
    )
    .expect("now() is never NULL")
}

impl Target {
    /// Its definition, compiled.
    pub fn compiled(&self, reg: &Registered) -> Rc<Compiled> {
        compiled(self.id, &self.definition, self.tenant.as_deref(), reg)
    }

    /// For a tenant's segment, its definition as every tenant's segment of
    /// the same text compiles (`SHARED`): for what a part reads of it, not
    /// for the predicate, which leaves the tenant out. Otherwise `compiled`.
    pub fn compiled_for_part(&self, reg: &Registered) -> Rc<Compiled> {
        if self.tenant.is_some() {
            let shared = SHARED.with(|m| {
                m.get_or((reg.relid, self.definition.clone()), || {
                    let compiled = segments_lang::compile(&self.definition, &shape(reg), &reg.key);
                    compiled.ok().filter(|c| c.references.is_empty()).map(Rc::new)
                })
            });
            if let Some(c) = shared.as_ref() {
                return c.clone();
            }
        }
        self.compiled(reg)
    }
}

/// Active segments of `source` (of `tenant`'s, for a source with tenants)
/// that read `table`, then every active segment that references one of
/// them, dependencies first.
pub fn targets_of(source: pg_sys::Oid, table: pg_sys::Oid, tenant: Option<&str>) -> Vec<Target> {
    // Every segment reads its source: for the source's own trigger the
    // segment_read test is left out (`$2` unused), the larger part of a
    // tenant's part build (bench/findings.md).
    let reads = if table == source {
        "d.kind OPERATOR(pg_catalog.=) 'active'"
    } else {
        "d.kind OPERATOR(pg_catalog.=) 'active'
                AND EXISTS (SELECT FROM segments.segment_read r
                             WHERE r.segment_id OPERATOR(pg_catalog.=) d.id AND r.relid OPERATOR(pg_catalog.=) $2)"
    };
    let (oid, text) = (pg_sys::OIDOID, pg_sys::TEXTOID);
    let (seed, types, args) = match tenant {
        // A tenant's segments through the index on (source, tenant).
        Some(tenant) => (
            format!("SELECT d.id, 0 FROM segments.segment_def d
                      WHERE d.source OPERATOR(pg_catalog.=) $1 AND d.tenant OPERATOR(pg_catalog.=) $3 AND {reads}"),
            vec![oid, oid, text],
            vec![source.into(), table.into(), spi::text_datum(tenant)],
        ),
        None => (
            format!("SELECT d.id, 0 FROM segments.segment_def d
                      WHERE d.source OPERATOR(pg_catalog.=) $1 AND d.tenant IS NULL AND {reads}"),
            vec![oid, oid],
            vec![source.into(), table.into()],
        ),
    };
    // Most segments are referenced by none: then the seed is the answer,
    // without the recursive query, which cost a tenant's part more to run
    // than everything else in its build.
    let direct = format!(
        "SELECT d.id, d.name, d.definition, d.track_changes, d.shared, 0, d.tenant,
                EXISTS (SELECT FROM segments.dependency x WHERE x.depends_on OPERATOR(pg_catalog.=) d.id)
           FROM segments.segment_def d JOIN ({seed}) s(id, depth) ON d.id OPERATOR(pg_catalog.=) s.id
          ORDER BY d.id"
    );
    let (targets, referenced) = Spi::connect(|_| {
        spi::read_kept(&direct, &types, &args);
        (read_targets(), spi::result_column::<bool>(8).into_iter().any(|r| r == Some(true)))
    });
    if referenced { closure(&seed, &types, &args) } else { targets }
}

/// Whether a segment of `source` is referenced by another (`IN SEGMENT`).
pub fn referenced(source: pg_sys::Oid) -> bool {
    spi::get::<bool>(
        "SELECT EXISTS (SELECT FROM segments.dependency x JOIN segments.segment_def d ON d.id OPERATOR(pg_catalog.=) x.depends_on
                         WHERE d.source OPERATOR(pg_catalog.=) $1)",
        &[source.into()],
    )
    .unwrap_or(false)
}

/// What `targets_of` answers for the source's own trigger and a tenant,
/// when no segment of the source is referenced by another: the tenant's
/// active segments, read through the index on (source, tenant) without a
/// statement, a new connection's first write of each tenant paying that
/// (bench/findings.md).
pub fn tenant_targets(source: pg_sys::Oid, tenant: &str) -> Vec<Target> {
    let index = crate::pg::backend::relation_oid(c"segments", c"segment_def_tenant");
    let keys = [("source", source.into()), ("tenant", spi::text_datum(tenant))];
    let columns = ["id", "kind", "name", "definition", "track_changes", "shared"];
    let mut targets: Vec<Target> = heap::index_rows(segment_def_oid(), index, &keys, &columns, |r| {
        (r.get::<String>(1).as_deref() == Some("active")).then(|| Target {
            id: r.get(0).unwrap_or_default(),
            depth: 0,
            name: r.get(2).unwrap_or_default(),
            definition: r.get(3).unwrap_or_default(),
            track_changes: r.get(4).unwrap_or(false),
            shared: r.get(5).unwrap_or(true),
            tenant: Some(tenant.to_string()),
        })
    })
    .into_iter()
    .flatten()
    .collect();
    targets.sort_unstable_by_key(|t| t.id);
    targets
}

/// The time-relative active segments of `source` and the active segments
/// that reference them: what refresh_due() has to look at.
pub fn time_relative(source: pg_sys::Oid) -> Vec<Target> {
    closure(
        "SELECT d.id, 0 FROM segments.segment_def d
          WHERE d.source OPERATOR(pg_catalog.=) $1 AND d.kind OPERATOR(pg_catalog.=) 'active' AND d.time_relative",
        &[pg_sys::OIDOID],
        &[source.into()],
    )
}

/// The active segments that reference segment `id`, directly or not,
/// dependencies first.
pub fn dependents(id: i64) -> Vec<Target> {
    closure(
        "SELECT segment_id, 1 FROM segments.dependency WHERE depends_on OPERATOR(pg_catalog.=) $1",
        &[pg_sys::INT8OID],
        &[id.into()],
    )
}

/// The `seed` segments (rows of id and depth) and all the segments that
/// reference them through `IN SEGMENT`, active ones only, each after the
/// segments it references. With a kept plan: a tenant's part runs it once
/// per backend and tenant, and planning the recursive query cost more than
/// the rest of the part's build.
fn closure(seed: &str, types: &[pg_sys::Oid], args: &[pg_sys::Datum]) -> Vec<Target> {
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
    Spi::connect(|_| {
        spi::read_kept(&sql, types, args);
        read_targets()
    })
}

/// The targets the last kept statement returned, as columns id, name,
/// definition, track_changes, shared, depth, tenant.
fn read_targets() -> Vec<Target> {
    let texts = |n: i32| spi::result_column::<String>(n).into_iter();
    let flags = |n: i32, default: bool| spi::result_column::<bool>(n).into_iter().map(move |b| b.unwrap_or(default));
    spi::result_column::<i64>(1)
        .into_iter()
        .zip(texts(2).zip(texts(3)))
        .zip(flags(4, false).zip(flags(5, true)))
        .zip(spi::result_column::<i32>(6).into_iter().zip(texts(7)))
        .map(|(((id, (name, definition)), (track_changes, shared)), (depth, tenant))| Target {
            id: id.unwrap_or_default(),
            name: name.unwrap_or_default(),
            definition: definition.unwrap_or_default(),
            track_changes,
            shared,
            depth: depth.unwrap_or(0),
            tenant,
        })
        .collect()
}
