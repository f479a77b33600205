//! The segment catalog: create, redefine, rename, drop, refresh, freeze,
//! dependents. Memberships of static segments are in `members`.

use pgrx::prelude::*;
use pgrx::{PgRelation, PgSqlErrorCode};

use super::language::text_of_tree;
use super::registration::require_registered;
use super::{bad_argument, compile, fail, fail_hint, required};
use crate::state::registry::{self, Registered};
use segments_lang::codegen;
use crate::pg::backend::current_user;
use crate::state::privilege::{as_owner, is_admin, require_select};
use segments_lang::Compiled;
use crate::pg::spi::{self, first, read_kept};
use crate::maintain;
use segments_lang::{format, parser};

/// A segment the caller can see.
#[derive(Clone)]
pub struct Segment {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub source: pg_sys::Oid,
    pub definition: Option<String>,
    pub shared: bool,
    pub track_changes: bool,
    pub can_modify: bool,
    /// The tenant it belongs to, if its source has tenants.
    pub tenant: Option<String>,
}

/// Within the tenant of `segments.tenant` if set (for every role: row
/// security does not apply to superusers); two rows when the name is taken
/// in several tenants and none is set.
const FIND: &str = "
SELECT id, name, kind, source::pg_catalog.oid, definition, shared, track_changes,
       pg_catalog.pg_has_role(owner, 'MEMBER') OR segments.is_admin(), tenant
  FROM segments.segment_def WHERE pg_catalog.lower(name) OPERATOR(pg_catalog.=) pg_catalog.lower($1)
   AND segments.in_tenant(tenant)
 LIMIT 2";

/// Looks a segment up by name as the caller: a personal segment of someone
/// else is "not found", exactly like one that does not exist.
pub fn find(name: &str) -> Segment {
    find_opt(name).unwrap_or_else(|| fail(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("segment \"{name}\" does not exist")))
}

/// `find`, None where it raises "does not exist".
pub fn find_opt(name: &str) -> Option<Segment> {
    let found = Spi::connect(|_| {
        read_kept(FIND, &[pg_sys::TEXTOID], &[name.into_datum()?]);
        let segment = Segment {
            id: first(1)?,
            name: first(2)?,
            kind: first(3)?,
            source: first(4)?,
            definition: first(5),
            shared: first(6)?,
            track_changes: first(7)?,
            can_modify: first(8)?,
            tenant: first(9),
        };
        Some((segment, spi::result_column::<i64>(1).len()))
    });
    match found {
        Some((segment, 1)) => Some(segment),
        Some(_) => fail_hint(
            PgSqlErrorCode::ERRCODE_AMBIGUOUS_FUNCTION,
            format!("segment name \"{name}\" is not unique: it exists in several tenants"),
            "SET LOCAL segments.tenant to the tenant you act for",
        ),
        None => None,
    }
}

/// A new static segment without a definition, owned by the caller, of
/// `source` (None: the only registered one) and the tenant of
/// `segments.tenant`: what an import creates for a name it does not find.
pub fn create_static(name: &str, source: Option<pg_sys::Oid>) -> Segment {
    create(name, None, "static", source, None, true, false, None)
}

/// Looks a segment up and requires the right to change it.
pub fn find_modifiable(name: &str) -> Segment {
    crate::state::replication::require_origin();
    modifiable(find(name))
}

/// `s`, if the caller may change it.
pub fn modifiable(s: Segment) -> Segment {
    if !s.can_modify {
        fail(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be the owner of segment \"{}\" or a segments_admin to change it", s.name),
        );
    }
    s
}

/// Names are unique per tenant (sources without tenants: among theirs).
fn name_taken(name: &str, except: Option<i64>, tenant: Option<&str>) -> bool {
    as_owner(|| {
        spi::get::<bool>(
            "SELECT EXISTS (SELECT FROM segments.segment_def WHERE pg_catalog.lower(name) OPERATOR(pg_catalog.=) pg_catalog.lower($1)
                              AND id IS DISTINCT FROM $2 AND tenant IS NOT DISTINCT FROM $3)",
            &[name.into(), except.into(), tenant.into()],
        )
        .unwrap_or(false)
    })
}

fn require_free_name(name: &str, except: Option<i64>, tenant: Option<&str>) {
    if name.is_empty() || name.chars().count() > 200 {
        bad_argument("a segment name has 1 to 200 characters".into());
    }
    if name_taken(name, except, tenant) {
        fail(PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT, format!("segment \"{name}\" already exists"));
    }
}

fn compile_new(definition: &str, reg: &Registered, tenant: Option<&str>, shared: bool) -> Compiled {
    let cat = registry::for_source(reg, tenant);
    let compiled = compile(definition, &cat, &reg.key);
    require_reads(&compiled);
    if shared {
        for id in &compiled.references {
            let personal = spi::get::<String>(
                "SELECT name FROM segments.segment_def WHERE id OPERATOR(pg_catalog.=) $1 AND NOT shared",
                &[(*id).into()],
            );
            if let Some(name) = personal {
                fail_hint(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("a shared segment cannot reference personal segment \"{name}\""),
                    "create this segment with shared => false, or share the referenced one",
                );
            }
        }
    }
    compiled
}

/// The caller may read every table the definition reads, the source
/// included: evaluating it (a fill, a member count) tells what they hold.
fn require_reads(compiled: &Compiled) {
    let mut tables: Vec<(&str, &str)> = compiled.reads.iter().map(|(s, t, _)| (s.as_str(), t.as_str())).collect();
    tables.sort();
    tables.dedup();
    for (schema, table) in tables {
        require_select(table_oid(schema, table));
    }
}

fn table_oid(schema: &str, name: &str) -> pg_sys::Oid {
    spi::get::<pg_sys::Oid>(
        "SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1, $2))::pg_catalog.oid",
        &[schema.into(), name.into()],
    )
    .unwrap_or(pg_sys::Oid::INVALID)
}

/// Recomputes a segment for every contact, records the refresh, and sets its
/// count from the membership just computed (a repair, like the recompute).
/// Runs as the owner. A new segment's first fill is not logged as changes.
fn fill(id: i64, predicate: &str, reg: &Registered, track: bool) {
    let horizon = maintain::definitions::sweep_horizon();
    maintain::recompute::recompute(&[maintain::recompute::Job { id, predicate: predicate.to_string(), track, flat: false }], reg, maintain::recompute::Rows::All);
    let count = format!("SELECT pg_catalog.count(*) FROM {} WHERE segment_id OPERATOR(pg_catalog.=) $1", reg.membership());
    record_fill(id, &count, horizon);
}

/// The first fill of a segment created a moment ago, whose membership is
/// therefore empty: one plain INSERT … SELECT, as fast as writing the rows
/// by hand (no anti-join, no conflict checks), counted as it goes. Nothing
/// to lock against drop_segment (`state::liveness::live`): nobody else sees the
/// segment before this transaction commits, nor has counted it.
fn fill_new(id: i64, predicate: &str, reg: &Registered) {
    let key = codegen::ident(&reg.key);
    let inserted = Spi::connect_mut(|client| {
        client
            .update(
                &format!(
                    "INSERT INTO {} (segment_id, {key}) SELECT $1, s.{key} FROM {} AS \"s\" WHERE ({predicate})",
                    reg.membership(),
                    reg.source
                ),
                None,
                &[id.into()],
            )
            .map(|t| t.len() as i64)
    })
    .expect("filling the new segment");
    spi::run("INSERT INTO segments.count_delta (segment_id, delta) VALUES ($1, $2)", &[id.into(), inserted.into()]);
}

/// Records a fill: its time, where the next sweep starts (`horizon`, read
/// before the fill), and the member count (`count`: SQL for it).
/// The UPDATE locks the segment against drop_segment, or finds it dropped
/// meanwhile, and then no count is written for it.
fn record_fill(id: i64, count: &str, horizon: pgrx::datum::TimestampWithTimeZone) {
    spi::run(
        &format!(
            "UPDATE segments.segment_def SET refreshed_at = pg_catalog.now(), swept_at = $2
              WHERE id OPERATOR(pg_catalog.=) $1;
             {}",
            crate::state::counts::reset("$1", count)
        ),
        &[id.into(), horizon.into()],
    );
}


fn set_dependencies(id: i64, references: &[i64]) {
    spi::run("DELETE FROM segments.dependency WHERE segment_id OPERATOR(pg_catalog.=) $1", &[id.into()]);
    add_dependencies(id, references);
}

/// Records that segment `id`, which has none yet, references `references`.
fn add_dependencies(id: i64, references: &[i64]) {
    if references.is_empty() {
        return;
    }
    spi::run(
        "INSERT INTO segments.dependency (segment_id, depends_on) SELECT $1, pg_catalog.unnest($2)",
        &[id.into(), references.to_vec().into()],
    );
}

fn resolve_source(source: Option<pg_sys::Oid>) -> pg_sys::Oid {
    match source {
        Some(rel) => rel,
        None => registry::only_source().unwrap_or_else(|| {
            bad_argument("name the source: more or fewer than one source is registered".into())
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn create(
    name: &str,
    definition: Option<String>,
    kind: &str,
    source: Option<pg_sys::Oid>,
    description: Option<&str>,
    shared: bool,
    track_changes: bool,
    tenant: Option<&str>,
) -> Segment {
    crate::state::replication::require_origin();
    if kind != "active" && kind != "static" {
        bad_argument(format!("kind must be 'active' or 'static', not '{kind}'"));
    }
    let rel = resolve_source(source);
    let reg = require_registered(rel);
    require_select(rel);
    let tenant = crate::state::tenant::of_new_segment(&reg, tenant);
    require_free_name(name, None, tenant.as_deref());
    let compiled = match definition.as_deref() {
        Some(d) => Some(compile_new(d, &reg, tenant.as_deref(), shared)),
        None if kind == "static" => None,
        None => bad_argument("an active segment needs a definition".into()),
    };
    let owner = current_user();
    // A personal segment created for an application user is that user's.
    let app_user = if shared { None } else { crate::state::tenant::app_user() };
    as_owner(|| {
        if compiled.is_some() && kind == "active" {
            maintain::writers::block_writers(&reg);
        }
        // Recorded as a fill (`record_fill`) with the row itself: where the
        // first sweep starts is read before the fill, and a new segment has
        // no dependencies or reads to replace. A creation runs about twenty
        // statements, each parsed and planned on a new connection's first.
        let horizon = compiled.as_ref().map(|_| maintain::definitions::sweep_horizon());
        let id = spi::get::<i64>(
            "INSERT INTO segments.segment_def (name, kind, source, definition, description, owner, shared, track_changes, tenant, app_user,
                                               time_relative, refreshed_at, swept_at)
             VALUES ($1, $2, $3, $4, $5, $6::pg_catalog.oid::pg_catalog.regrole, $7, $8, $9, $10,
                     $11, CASE WHEN $12::pg_catalog.timestamptz IS NOT NULL THEN pg_catalog.now() END, $12)
             RETURNING id",
            &[
                name.into(),
                kind.into(),
                rel.into(),
                compiled.as_ref().map(|c| c.text.clone()).into(),
                description.into(),
                owner.into(),
                shared.into(),
                track_changes.into(),
                tenant.clone().into(),
                app_user.clone().into(),
                compiled.as_ref().is_some_and(|c| c.time_relative).into(),
                horizon.into(),
            ],
        )
        .expect("INSERT … RETURNING gives the id");
        if let Some(c) = &compiled {
            add_dependencies(id, &c.references);
            maintain::install::add_reads(id, rel, &c.reads);
            fill_new(id, &c.predicate, &reg);
            if kind == "active" {
                maintain::install::sync_for_new_segment(id, rel);
            }
        }
        crate::state::cache::definitions_changed();
        // As `find` would show it to its creator.
        Segment {
            id,
            name: name.to_string(),
            kind: kind.to_string(),
            source: rel,
            definition: compiled.map(|c| c.text),
            shared,
            track_changes,
            can_modify: true,
            tenant,
        }
    })
}

#[pg_extern(volatile, name = "create_segment")]
#[search_path(pg_catalog, pg_temp)]
fn create_segment(
    name: Option<&str>,
    definition: Option<&str>,
    kind: default!(Option<&str>, "'active'"),
    source: default!(Option<PgRelation>, "NULL"),
    description: default!(Option<&str>, "NULL"),
    shared: default!(bool, true),
    track_changes: default!(bool, false),
    tenant: default!(Option<&str>, "NULL"),
) -> i64 {
    let (name, kind) = (required(name, "name"), required(kind, "kind"));
    create(name, definition.map(str::to_string), kind, source.map(|r| r.oid()), description, shared, track_changes, tenant).id
}

/// `create_segment(name, definition jsonb, …)`, whose SQL signature is a
/// wrapper in sql/reading.sql passing the tree as text (`text_of_tree`).
#[pg_extern(volatile, name = "_create_segment_from_tree")]
#[search_path(pg_catalog, pg_temp)]
fn create_segment_from_tree(
    name: Option<&str>,
    definition: Option<&str>,
    kind: Option<&str>,
    source: Option<PgRelation>,
    description: Option<&str>,
    shared: Option<bool>,
    track_changes: Option<bool>,
    tenant: Option<&str>,
) -> i64 {
    let (name, kind) = (required(name, "name"), required(kind, "kind"));
    let (shared, track_changes) = (required(shared, "shared"), required(track_changes, "track_changes"));
    create(name, definition.map(text_of_tree), kind, source.map(|r| r.oid()), description, shared, track_changes, tenant).id
}

#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn redefine_segment(name: &str, definition: &str) {
    let seg = find_modifiable(name);
    let reg = require_registered(seg.source);
    let compiled = compile_new(definition, &reg, seg.tenant.as_deref(), seg.shared);
    as_owner(|| {
        if seg.kind == "active" {
            maintain::writers::block_writers(&reg);
        }
        let cycle = spi::get::<bool>(
            "WITH RECURSIVE reach(id) AS (
                 SELECT pg_catalog.unnest($1::bigint[])
                 UNION
                 SELECT d.depends_on FROM segments.dependency d JOIN reach r ON d.segment_id OPERATOR(pg_catalog.=) r.id)
             SELECT EXISTS (SELECT FROM reach WHERE id OPERATOR(pg_catalog.=) $2)",
            &[compiled.references.clone().into(), seg.id.into()],
        )
        .unwrap_or(false);
        if cycle {
            fail(
                PgSqlErrorCode::ERRCODE_INVALID_OBJECT_DEFINITION,
                format!("segment \"{}\" would depend on itself through IN SEGMENT", seg.name),
            );
        }
        spi::run(
            "UPDATE segments.segment_def SET definition = $2, time_relative = $3, updated_at = pg_catalog.now()
              WHERE id OPERATOR(pg_catalog.=) $1",
            &[seg.id.into(), compiled.text.as_str().into(), compiled.time_relative.into()],
        );
        set_dependencies(seg.id, &compiled.references);
        maintain::install::set_reads(seg.id, seg.source, &compiled.reads);
        fill(seg.id, &compiled.predicate, &reg, seg.track_changes);
        maintain::recompute::propagate(seg.id, &reg, None);
        maintain::install::sync_source(seg.source);
        crate::state::cache::definitions_changed();
    });
}

#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn rename_segment(name: &str, new_name: &str) {
    let seg = find_modifiable(name);
    require_free_name(new_name, Some(seg.id), seg.tenant.as_deref());
    as_owner(|| {
        spi::run(
            "UPDATE segments.segment_def SET name = $2, updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
            &[seg.id.into(), new_name.into()],
        );
        // Definitions name the segments they reference: rewrite them.
        let dependents: Vec<(i64, String)> = Spi::connect(|client| {
            client
                .select(
                    "SELECT s.id, s.definition FROM segments.dependency d
                       JOIN segments.segment_def s ON s.id OPERATOR(pg_catalog.=) d.segment_id
                      WHERE d.depends_on OPERATOR(pg_catalog.=) $1",
                    None,
                    &[seg.id.into()],
                )
                .expect("reading dependents")
                .map(|r| (r.get(1).ok().flatten().unwrap_or_default(), r.get(2).ok().flatten().unwrap_or_default()))
                .collect()
        });
        for (id, definition) in dependents {
            let mut expr = parser::parse(&definition).unwrap_or_else(|p| raise_stored(id, p.message));
            expr.rename_segment(&seg.name, new_name);
            spi::run(
                "UPDATE segments.segment_def SET definition = $2 WHERE id OPERATOR(pg_catalog.=) $1",
                &[id.into(), format::format(&expr).into()],
            );
        }
        crate::state::cache::definitions_changed();
    });
}

fn raise_stored(id: i64, message: String) -> ! {
    fail(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("stored definition of segment {id} does not parse: {message}"))
}

#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn drop_segment(name: &str, cascade: default!(bool, false)) {
    let seg = find_modifiable(name);
    let doomed: Vec<(i64, String, bool)> = as_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "WITH RECURSIVE dep(id) AS (
                         SELECT $1::bigint
                         UNION
                         SELECT d.segment_id FROM segments.dependency d JOIN dep ON d.depends_on OPERATOR(pg_catalog.=) dep.id)
                     SELECT s.id, s.name, pg_catalog.pg_has_role($2::pg_catalog.oid, s.owner, 'MEMBER')
                       FROM dep JOIN segments.segment_def s ON s.id OPERATOR(pg_catalog.=) dep.id",
                    None,
                    &[seg.id.into(), current_user().into()],
                )
                .expect("reading dependents")
                .map(|r| {
                    (
                        r.get(1).ok().flatten().unwrap_or_default(),
                        r.get(2).ok().flatten().unwrap_or_default(),
                        r.get(3).ok().flatten().unwrap_or(false),
                    )
                })
                .collect()
        })
    });
    let others: Vec<&str> = doomed.iter().filter(|d| d.0 != seg.id).map(|d| d.1.as_str()).collect();
    if !others.is_empty() && !cascade {
        fail_hint(
            PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
            format!("segment \"{}\" is referenced by {} other segment(s)", seg.name, others.len()),
            "see segments.dependents(name); drop them first or use cascade => true",
        );
    }
    let admin = is_admin();
    if let Some(d) = doomed.iter().find(|d| !d.2 && !admin) {
        fail(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("cascade would drop segment #{} owned by another role", d.0),
        );
    }
    let ids: Vec<i64> = doomed.iter().map(|d| d.0).collect();
    as_owner(|| drop_segments(&ids, seg.source));
}

/// Drops the segments `ids` of `source` (their dependents among them), with
/// their members and counts. As the owner.
pub fn drop_segments(ids: &[i64], source: pg_sys::Oid) {
    crate::state::liveness::lock_for_drop(ids);
    spi::run(
        "DELETE FROM segments.dependency WHERE depends_on OPERATOR(pg_catalog.=) ANY ($1) OR segment_id OPERATOR(pg_catalog.=) ANY ($1);
         DELETE FROM segments.segment_def WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
        &[ids.to_vec().into()],
    );
    crate::state::liveness::forget_segments(ids, Some(&require_registered(source).membership()));
    maintain::install::sync_source(source);
    crate::state::cache::definitions_changed();
}

#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn refresh_segment(name: &str) -> i64 {
    let seg = find_modifiable(name);
    let reg = require_registered(seg.source);
    if let Some(definition) = &seg.definition {
        // Compiled as the owner (it may reference segments the caller does
        // not see); what it reads is checked as the caller.
        require_reads(&as_owner(|| maintain::definitions::compiled(seg.id, definition, seg.tenant.as_deref(), &reg)));
        as_owner(|| {
            fill(seg.id, &maintain::definitions::compiled(seg.id, definition, seg.tenant.as_deref(), &reg).predicate, &reg, seg.track_changes);
            maintain::recompute::propagate(seg.id, &reg, None);
        });
    }
    as_owner(|| crate::state::counts::count(seg.id))
}

#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn freeze_segment(name: &str) {
    let seg = find_modifiable(name);
    if seg.kind == "static" {
        bad_argument(format!("segment \"{}\" is already static", seg.name));
    }
    as_owner(|| {
        spi::run(
            "UPDATE segments.segment_def SET kind = 'static', updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
            &[seg.id.into()],
        );
        maintain::install::sync_source(seg.source);
        crate::state::cache::definitions_changed();
    });
}

#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn dependents(name: &str) -> SetOfIterator<'static, String> {
    let seg = find(name);
    let names: Vec<String> = Spi::connect(|client| {
        client
            .select(
                "SELECT s.name FROM segments.dependency d
                   JOIN segments.segment_def s ON s.id OPERATOR(pg_catalog.=) d.segment_id
                  WHERE d.depends_on OPERATOR(pg_catalog.=) $1 ORDER BY s.name",
                None,
                &[seg.id.into()],
            )
            .expect("reading dependents")
            .filter_map(|r| r.get::<String>(1).ok().flatten())
            .collect()
    });
    SetOfIterator::new(names)
}

/// Brings every time-relative active segment up to date with the passing of
/// time: only the contacts whose time values crossed a boundary since the
/// segment's last sweep are recomputed (and, for segments that reference
/// those, the same contacts). Returns how many memberships changed.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn refresh_due() -> i64 {
    maintain::sweep::refresh_due()
}
