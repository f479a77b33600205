//! Schema changes of registered tables (SPEC §6): what a `DROP TABLE` or
//! `ALTER TABLE` does to segments, decided before it runs
//! (`schema_change_start`, from the C event trigger of `pg::ddl`) and
//! completed after (`_schema_change_end`). Dropping a table or column that
//! segments read is refused (2BP01, naming them) unless `CASCADE`, which
//! drops those segments; renaming a column they read is refused; changing a
//! read column's type works if every definition still compiles; making a
//! registered table unlogged is refused. Table renames and moves need no
//! decision: definitions name relations and lookups by their registered
//! names, and the caches are dropped after the change.

use pgrx::prelude::*;

use super::registration::{refuse_unlogged, unregister};
use super::segment::drop_segments;
use super::{fail, fail_hint};
use crate::maintain;
use crate::pg::backend::current_user;
use crate::pg::ddl::SchemaChange;
use crate::pg::error::Code as PgSqlErrorCode;
use crate::pg::spi;
use crate::state::cache;
use crate::state::privilege::{as_owner, pinned_search_path, regclass_text};
use crate::state::registry;

/// Segments (id, source, name as the caller may read it) that read `table`
/// (`column` of it, if given), with every segment that references one of
/// them, transitively.
fn readers(table: pg_sys::Oid, column: Option<&str>) -> Vec<(i64, pg_sys::Oid, Option<String>)> {
    spi::rows(
        "WITH RECURSIVE doomed(id) AS (
             SELECT r.segment_id FROM segments.segment_read r
              WHERE r.relid OPERATOR(pg_catalog.=) $1
                AND ($2::pg_catalog.text IS NULL OR $2::pg_catalog.text OPERATOR(pg_catalog.=) ANY (r.columns))
             UNION
             SELECT d.segment_id FROM segments.dependency d JOIN doomed ON d.depends_on OPERATOR(pg_catalog.=) doomed.id)
         SELECT s.id, s.source::pg_catalog.oid,
                CASE WHEN segments.can_see_as($3, s.shared, s.owner, s.app_user) THEN s.name END
           FROM doomed JOIN segments.segment_def s ON s.id OPERATOR(pg_catalog.=) doomed.id ORDER BY s.id",
        &[table.into(), column.into(), current_caller().into()],
        |r| {
            (
                spi::column::<i64>(r, 1).unwrap_or_default(),
                spi::column::<pg_sys::Oid>(r, 2).unwrap_or(pg_sys::Oid::INVALID),
                spi::column::<String>(r, 3),
            )
        },
    )
}

thread_local! {
    /// The role that ran the DDL (the handler runs as the owner).
    static CALLER: std::cell::Cell<pg_sys::Oid> = const { std::cell::Cell::new(pg_sys::Oid::INVALID) };
    /// Tables whose UPDATE triggers the running ALTER TABLE dropped to
    /// retype a column they watch: `_schema_change_end` puts them back and
    /// checks the definitions. Nothing else re-creates triggers there: a
    /// pg_restore's ALTER TABLEs run before its own CREATE TRIGGERs.
    static RETYPED: std::cell::RefCell<Vec<pg_sys::Oid>> = const { std::cell::RefCell::new(vec![]) };
}

fn current_caller() -> pg_sys::Oid {
    CALLER.with(|c| c.get())
}

/// "segments A, B and 2 others": the names the caller may see, and how many
/// others (another role's personal segments are not named).
fn named(segments: &[(i64, pg_sys::Oid, Option<String>)]) -> String {
    let names: Vec<String> = segments.iter().filter_map(|s| s.2.as_ref()).map(|n| format!("\"{n}\"")).collect();
    let hidden = segments.len() - names.len();
    match (names.is_empty(), hidden) {
        (false, 0) => format!("segment(s) {}", names.join(", ")),
        (false, h) => format!("segment(s) {} and {h} other(s)", names.join(", ")),
        (true, h) => format!("{h} segment(s) of other roles"),
    }
}

/// Drops `segments`, grouped by source.
fn drop_all(segments: &[(i64, pg_sys::Oid, Option<String>)]) {
    let mut sources: Vec<pg_sys::Oid> = segments.iter().map(|s| s.1).collect();
    sources.sort_unstable_by_key(|o| o.to_u32());
    sources.dedup();
    for source in sources {
        let ids: Vec<i64> = segments.iter().filter(|s| s.1 == source).map(|s| s.0).collect();
        drop_segments(&ids, source);
    }
}

/// 2BP01 unless `cascade`: `what` is still used by `segments`.
fn refuse_unless_cascade(what: &str, segments: &[(i64, pg_sys::Oid, Option<String>)], cascade: bool) {
    if !segments.is_empty() && !cascade {
        fail_hint(
            PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
            format!("cannot drop {what}: {} read(s) it", named(segments)),
            "use CASCADE to drop those segments too, or drop or redefine them first",
        );
    }
}

/// What role a column plays in a registration, if any: the source's key or
/// tenant column, a relation's contact column, a lookup's via column or target key.
fn registration_role(table: pg_sys::Oid, column: &str) -> Option<String> {
    spi::get::<String>(
        "SELECT x FROM (
             SELECT 'the key of source ' OPERATOR(pg_catalog.||) relid::pg_catalog.regclass::pg_catalog.text AS x
               FROM segments.source WHERE relid OPERATOR(pg_catalog.=) $1 AND key_column::pg_catalog.text OPERATOR(pg_catalog.=) $2
             UNION ALL
             SELECT 'the tenant column of source ' OPERATOR(pg_catalog.||) relid::pg_catalog.regclass::pg_catalog.text
               FROM segments.source WHERE relid OPERATOR(pg_catalog.=) $1 AND tenant_column::pg_catalog.text OPERATOR(pg_catalog.=) $2
             UNION ALL
             SELECT 'the contact column of relation ' OPERATOR(pg_catalog.||) pg_catalog.quote_literal(name)
               FROM segments.relation WHERE relation OPERATOR(pg_catalog.=) $1 AND contact_column::pg_catalog.text OPERATOR(pg_catalog.=) $2
             UNION ALL
             SELECT 'the via column of lookup ' OPERATOR(pg_catalog.||) pg_catalog.quote_literal(name)
               FROM segments.lookup WHERE source OPERATOR(pg_catalog.=) $1 AND via_column::pg_catalog.text OPERATOR(pg_catalog.=) $2
             UNION ALL
             SELECT 'the target key of lookup ' OPERATOR(pg_catalog.||) pg_catalog.quote_literal(name)
               FROM segments.lookup WHERE target OPERATOR(pg_catalog.=) $1 AND target_key::pg_catalog.text OPERATOR(pg_catalog.=) $2) r
          LIMIT 1",
        &[table.into(), column.into()],
    )
}

fn refuse_registration_column(table: pg_sys::Oid, column: &str, what: &str) {
    if let Some(role) = registration_role(table, column) {
        fail_hint(
            PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
            format!("cannot {what} column \"{column}\" of {}: it is {role}", regclass_text(table)),
            "unregister it first (segments.unregister_source)",
        );
    }
}

fn drop_table(table: pg_sys::Oid, cascade: bool) {
    let name = regclass_text(table);
    if registry::registered(table).is_some() {
        let segments = spi::rows(
            "SELECT id, source::pg_catalog.oid, CASE WHEN segments.can_see_as($2, shared, owner, app_user) THEN name END
               FROM segments.segment_def WHERE source OPERATOR(pg_catalog.=) $1 ORDER BY id",
            &[table.into(), current_caller().into()],
            |r| {
                (
                    spi::column::<i64>(r, 1).unwrap_or_default(),
                    spi::column::<pg_sys::Oid>(r, 2).unwrap_or(pg_sys::Oid::INVALID),
                    spi::column::<String>(r, 3),
                )
            },
        );
        refuse_unless_cascade(&format!("table {name}"), &segments, cascade);
        unregister(table);
    }
    let segments = readers(table, None);
    refuse_unless_cascade(&format!("table {name}"), &segments, cascade);
    drop_all(&segments);
    spi::run("DELETE FROM segments.relation WHERE relation OPERATOR(pg_catalog.=) $1", &[table.into()]);
    spi::run("DELETE FROM segments.lookup WHERE target OPERATOR(pg_catalog.=) $1", &[table.into()]);
    cache::definitions_changed();
}

/// The `ddl_command_start` handler (`pg::ddl`).
pub fn schema_change_start(changes: &[SchemaChange]) {
    CALLER.with(|c| c.set(current_user()));
    RETYPED.with(|r| r.borrow_mut().clear());
    as_owner(|| {
        pinned_search_path(|| {
            for change in changes {
                match change {
                    SchemaChange::DropTables { tables, cascade } => {
                        for &t in tables {
                            drop_table(t, *cascade);
                        }
                    }
                    SchemaChange::DropColumn { table, column, cascade } => {
                        if !registry::is_registered_table(*table) {
                            continue;
                        }
                        refuse_registration_column(*table, column, "drop");
                        let segments = readers(*table, Some(column));
                        refuse_unless_cascade(
                            &format!("column \"{column}\" of {}", regclass_text(*table)),
                            &segments,
                            *cascade,
                        );
                        drop_all(&segments);
                        // The UPDATE triggers' column list must not hold the
                        // column: CASCADE would drop them with it.
                        maintain::install::sync_update_trigger(*table);
                    }
                    SchemaChange::AlterColumnType { table, column } => {
                        if !registry::is_registered_table(*table) {
                            continue;
                        }
                        refuse_registration_column(*table, column, "change the type of");
                        // PostgreSQL refuses the change of a column in a
                        // trigger's UPDATE OF list; `_schema_change_end` puts
                        // them back.
                        if maintain::install::watched_columns(*table, None).contains(column) {
                            maintain::install::drop_update_triggers(*table);
                            RETYPED.with(|r| r.borrow_mut().push(*table));
                        }
                    }
                    SchemaChange::RenameColumn { table, column } => {
                        if !registry::is_registered_table(*table) {
                            continue;
                        }
                        refuse_registration_column(*table, column, "rename");
                        let segments = readers(*table, Some(column));
                        if !segments.is_empty() {
                            fail_hint(
                                PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
                                format!(
                                    "cannot rename column \"{column}\" of {}: {} read(s) it",
                                    regclass_text(*table),
                                    named(&segments)
                                ),
                                "redefine or drop those segments first",
                            );
                        }
                    }
                    SchemaChange::SetUnlogged { table } => {
                        if registry::is_registered_table(*table) {
                            refuse_unlogged(*table);
                        }
                    }
                }
            }
        })
    });
}

/// After an `ALTER TABLE` of registered tables (the `ddl_command_end` event
/// trigger): every backend drops what it compiled against the old tables
/// (names, types); where a watched column was retyped, the UPDATE triggers
/// come back and every definition that reads the table must still compile.
#[pg_extern(name = "_schema_change_end")]
#[search_path(pg_catalog, pg_temp)]
fn schema_change_end(tables: Vec<pg_sys::Oid>) {
    let retyped = RETYPED.with(|r| std::mem::take(&mut *r.borrow_mut()));
    as_owner(|| {
        let mut changed = false;
        for table in tables.into_iter().filter(|&t| registry::is_registered_table(t)) {
            changed = true;
            if !retyped.contains(&table) {
                continue;
            }
            maintain::install::sync_update_trigger(table);
            let definitions = spi::rows(
                "SELECT s.id, s.name, s.definition, s.source::pg_catalog.oid, s.tenant
                   FROM segments.segment_read r JOIN segments.segment_def s ON s.id OPERATOR(pg_catalog.=) r.segment_id
                  WHERE r.relid OPERATOR(pg_catalog.=) $1 AND s.definition IS NOT NULL ORDER BY s.id",
                &[table.into()],
                |r| {
                    (
                        spi::column::<String>(r, 2).unwrap_or_default(),
                        spi::column::<String>(r, 3).unwrap_or_default(),
                        spi::column::<pg_sys::Oid>(r, 4).unwrap_or(pg_sys::Oid::INVALID),
                        spi::column::<String>(r, 5),
                    )
                },
            );
            for (name, definition, source, tenant) in definitions {
                let Some(reg) = registry::registered(source) else { continue };
                let cat = registry::for_source(&reg, tenant.as_deref());
                if let Err(d) = segments_lang::compile(&definition, &cat, &reg.key) {
                    fail(
                        PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
                        format!("the change breaks segment \"{name}\": {}", d.message),
                    );
                }
            }
        }
        if changed {
            cache::definitions_changed();
        }
    });
}

extension_sql_file!("../../sql/schema_changes.sql", name = "schema_changes", requires = [schema_change_end]);
