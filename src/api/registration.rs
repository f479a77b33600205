//! register_source / register_relation / register_lookup / unregister_source.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use crate::pg::spi;
use pgrx::{PgRelation, PgSqlErrorCode};

use super::{bad_argument, fail, fail_hint, required};
use crate::state::registry::{self, Registered};
use segments_lang::codegen::{ident, literal, qualified};
use crate::maintain;
use crate::state::replication::require_origin;
use crate::state::privilege::{as_owner, regclass_text, require_select, require_table_owner, require_trigger_right};

/// Key types a source may have (SPEC §1).
const KEY_TYPES: &[&str] = &["int8", "int4", "uuid", "text"];

/// The column's type name in pg_catalog and whether it exists.
fn column_type(rel: pg_sys::Oid, column: &str) -> Option<(pg_sys::Oid, String)> {
    Spi::connect(|client| {
        let rows = client
            .select(
                "SELECT a.atttypid, t.typname::text FROM pg_catalog.pg_attribute a
                   JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
                  WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attname OPERATOR(pg_catalog.=) $2
                    AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped",
                Some(1),
                &[rel.into(), column.into()],
            )
            .ok()?;
        let row = rows.first();
        Some((row.get::<pg_sys::Oid>(1).ok()??, row.get::<String>(2).ok()??))
    })
}

fn require_column(rel: pg_sys::Oid, column: &str) -> (pg_sys::Oid, String) {
    column_type(rel, column).unwrap_or_else(|| {
        fail(
            PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
            format!("column \"{column}\" of relation {} does not exist", regclass_text(rel)),
        )
    })
}

/// Whether a unique, non-partial index covers exactly `column`.
fn is_unique(rel: pg_sys::Oid, column: &str) -> bool {
    spi::get::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
                          ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
                        WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisunique AND i.indnatts OPERATOR(pg_catalog.=) 1
                          AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname OPERATOR(pg_catalog.=) $2)",
        &[rel.into(), column.into()],
    )
    .unwrap_or(false)
}

/// Maintenance triggers see a row under the table they fire on: on a
/// partitioned table a row trigger fires on the partition, and a statement
/// that writes a partition directly fires none of the parent's statement
/// triggers. Until both are followed, partitioned tables and partitions are
/// refused rather than maintained wrongly.
fn require_table(rel: pg_sys::Oid) {
    let (kind, partition) = Spi::get_two_with_args::<String, bool>(
        "SELECT relkind::text, relispartition FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) $1",
        &[rel.into()],
    )
    .unwrap_or((None, None));
    if kind.as_deref() == Some("p") || partition == Some(true) {
        fail_hint(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{} is partitioned or a partition, which pg_segments does not maintain", regclass_text(rel)),
            "register a plain table",
        );
    }
    if kind.as_deref() != Some("r") {
        fail(PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE, format!("{} is not a table", regclass_text(rel)));
    }
    let unlogged = spi::get::<bool>(
        "SELECT relpersistence OPERATOR(pg_catalog.=) 'u' FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) $1",
        &[rel.into()],
    );
    if unlogged == Some(true) {
        refuse_unlogged(rel);
    }
    // The extension's own tables (catalog, counts, memberships) live in its
    // schema: maintenance triggers there would run inside every write of
    // pg_segments itself.
    let own = spi::get::<bool>(
        "SELECT c.relnamespace OPERATOR(pg_catalog.=) e.extnamespace
           FROM pg_catalog.pg_class c, pg_catalog.pg_extension e
          WHERE c.oid OPERATOR(pg_catalog.=) $1 AND e.extname OPERATOR(pg_catalog.=) 'pg_segments'",
        &[rel.into()],
    )
    .unwrap_or(false);
    if own {
        fail(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("{} belongs to pg_segments and cannot be registered", regclass_text(rel)),
        );
    }
}

/// Unlogged tables lose their rows in a crash, and the memberships (logged)
/// would then name contacts and rows that no longer exist.
pub fn refuse_unlogged(rel: pg_sys::Oid) -> ! {
    fail_hint(
        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        format!("{} would be unlogged, which pg_segments does not maintain", regclass_text(rel)),
        "a crash empties an unlogged table while its memberships stay: keep registered tables logged",
    )
}

pub fn require_registered(rel: pg_sys::Oid) -> Registered {
    registry::registered(rel).unwrap_or_else(|| {
        fail_hint(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("{} is not a registered source", regclass_text(rel)),
            "register it with segments.register_source()",
        )
    })
}

/// A membership table name not taken yet: `<table>_membership`, else with the schema.
fn membership_name(rel: pg_sys::Oid) -> String {
    spi::get::<String>(
        "SELECT CASE WHEN pg_catalog.to_regclass(pg_catalog.format('segments.%I', left(c.relname, 52) || '_membership')) IS NULL
                     THEN left(c.relname, 52) || '_membership'
                     ELSE left(n.nspname || '_' || c.relname, 40) || '_' || c.oid::text || '_membership' END
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
          WHERE c.oid OPERATOR(pg_catalog.=) $1",
        &[rel.into()],
    )
    .expect("the source exists")
}

#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn register_source(
    source: Option<PgRelation>,
    key_column: default!(Option<&str>, "NULL"),
    tenant_column: default!(Option<&str>, "NULL"),
) {
    require_origin();
    let rel = required(source, "source").oid();
    require_table(rel);
    require_table_owner(rel, "register it as a source");
    if registry::registered(rel).is_some() {
        fail(PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT, format!("{} is already a registered source", regclass_text(rel)));
    }
    let key = match key_column {
        Some(k) => k.to_string(),
        None => registry::primary_key(rel).unwrap_or_else(|| {
            fail_hint(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("{} has no single-column primary key", regclass_text(rel)),
                "name the key column: segments.register_source('contacts', 'id')",
            )
        }),
    };
    let (key_type, key_typname) = require_column(rel, &key);
    if !KEY_TYPES.contains(&key_typname.as_str()) {
        bad_argument(format!("key column \"{key}\" is of type {key_typname}; a source key must be bigint, integer, uuid or text"));
    }
    if !is_unique(rel, &key) {
        fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("key column \"{key}\" of {} is not unique", regclass_text(rel)),
            "a source key needs a primary key or unique index on that column alone",
        );
    }
    if let Some(tenant) = tenant_column {
        let (_, typname) = require_column(rel, tenant);
        if !KEY_TYPES.contains(&typname.as_str()) {
            bad_argument(format!(
                "tenant column \"{tenant}\" is of type {typname}; a tenant column must be bigint, integer, uuid or text"
            ));
        }
    }
    let table = membership_name(rel);
    let membership = qualified("segments", &table);
    let source_sql = registry::qualified_name(rel);
    let k = ident(&key);
    let args = format!("{}, {}", literal(&membership), literal(&key));
    // No foreign key to segment_def: its check would cost a lookup and a
    // row lock per member written, half the time of filling a segment.
    // Writers lock the segments they add members to once per statement
    // (`state::liveness::live`), and drop_segment deletes the members itself.
    as_owner(|| {
        spi::run(&format!(
            "CREATE TABLE {membership} (
                segment_id bigint NOT NULL,
                {k} {typ} NOT NULL,
                entered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
                PRIMARY KEY (segment_id, {k}));
             CREATE INDEX ON {membership} ({k}, segment_id);
             ALTER TABLE {membership} ENABLE ROW LEVEL SECURITY;
             CREATE POLICY visible ON {membership} FOR SELECT
                 USING (segment_id OPERATOR(pg_catalog.=) ANY (SELECT d.id FROM segments.segment_def d));
             CREATE OR REPLACE TRIGGER segments_forget_deleted AFTER DELETE ON {source_sql} REFERENCING OLD TABLE AS old_rows
                 FOR EACH STATEMENT EXECUTE FUNCTION segments.forget_contacts({args});
             CREATE OR REPLACE TRIGGER segments_forget_truncated AFTER TRUNCATE ON {source_sql}
                 FOR EACH STATEMENT EXECUTE FUNCTION segments.forget_contacts({args});
             CREATE OR REPLACE TRIGGER segments_move_key AFTER UPDATE OF {k} ON {source_sql}
                 FOR EACH ROW WHEN (OLD.{k} IS DISTINCT FROM NEW.{k})
                 EXECUTE FUNCTION segments.move_contact({args});",
            typ = registry::type_name(key_type),
        ), &[]);
        if let Some(tenant) = tenant_column {
            spi::run(&format!(
                "CREATE OR REPLACE TRIGGER segments_leave_tenant AFTER UPDATE OF {t} ON {source_sql}
                     FOR EACH ROW WHEN (OLD.{t} IS DISTINCT FROM NEW.{t})
                     EXECUTE FUNCTION segments.leave_tenant({args}, {})",
                literal(tenant),
                t = ident(tenant),
            ), &[]);
        }
        spi::run(
            &format!(
                "INSERT INTO segments.source (relid, key_column, key_type, membership, tenant_column)
                 VALUES ($1, $2, $3, {}::pg_catalog.regclass, $4)",
                literal(&membership)
            ),
            &[rel.into(), key.as_str().into(), key_type.into(), tenant_column.into()],
        );
        maintain::install::install_triggers(rel);
        maintain::install::sync_source(rel);
        crate::state::cache::definitions_changed();
    });
}

#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn unregister_source(source: PgRelation, cascade: default!(bool, false)) {
    require_origin();
    let rel = source.oid();
    require_registered(rel);
    require_table_owner(rel, "unregister it");
    let segments = as_owner(|| {
        spi::get::<i64>(
            "SELECT pg_catalog.count(*) FROM segments.segment_def WHERE source OPERATOR(pg_catalog.=) $1",
            &[rel.into()],
        )
        .unwrap_or(0)
    });
    if segments > 0 && !cascade {
        fail_hint(
            PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
            format!("{} still has {segments} segment(s)", regclass_text(rel)),
            "drop them first, or call segments.unregister_source(source, cascade => true)",
        );
    }
    as_owner(|| unregister(rel));
}

/// Removes the registration of source `rel`: its segments, their members,
/// its membership table and its triggers. As the owner.
pub fn unregister(rel: pg_sys::Oid) {
    let reg = require_registered(rel);
    let source_sql = registry::qualified_name(rel);
    let tables = registry::registered_tables(rel);
    {
        let ids = spi::get::<Vec<i64>>(
            "SELECT COALESCE(pg_catalog.array_agg(id), '{}') FROM segments.segment_def WHERE source OPERATOR(pg_catalog.=) $1",
            &[rel.into()],
        )
        .unwrap_or_default();
        crate::state::liveness::lock_for_drop(&ids);
        spi::run(
            "DELETE FROM segments.dependency WHERE depends_on OPERATOR(pg_catalog.=) ANY (
                 SELECT id FROM segments.segment_def WHERE source OPERATOR(pg_catalog.=) $1)",
            &[rel.into()],
        );
        spi::run("DELETE FROM segments.segment_def WHERE source OPERATOR(pg_catalog.=) $1", &[rel.into()]);
        spi::run("DELETE FROM segments.source WHERE relid OPERATOR(pg_catalog.=) $1", &[rel.into()]);
        spi::run(&format!(
            "DROP TRIGGER segments_forget_deleted ON {source_sql};
             DROP TRIGGER segments_forget_truncated ON {source_sql};
             DROP TRIGGER segments_move_key ON {source_sql};{leave}
             DROP TABLE {};",
            reg.membership(),
            leave = match reg.tenant_column {
                Some(_) => format!("\n             DROP TRIGGER IF EXISTS segments_leave_tenant ON {source_sql};"),
                None => String::new(),
            },
        ), &[]);
        // After the DROP TABLE, which waited for every writer of the table.
        crate::state::liveness::forget_segments(&ids, None);
        for t in &tables {
            maintain::install::remove_unused_triggers(*t);
        }
        crate::state::cache::definitions_changed();
    }
}

/// Whether values of the two types can be compared with pg_catalog's `=`,
/// as SQL compares them: directly, or after an implicit cast of either side
/// (`varchar` against `text`).
fn comparable(a: pg_sys::Oid, b: pg_sys::Oid) -> bool {
    spi::get::<bool>(
        "SELECT $1 OPERATOR(pg_catalog.=) $2 OR EXISTS (
             SELECT FROM pg_catalog.pg_operator o
              WHERE o.oprname OPERATOR(pg_catalog.=) '=' AND o.oprnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
                AND (o.oprleft OPERATOR(pg_catalog.=) $1
                     OR EXISTS (SELECT FROM pg_catalog.pg_cast c
                                 WHERE c.castsource OPERATOR(pg_catalog.=) $1 AND c.casttarget OPERATOR(pg_catalog.=) o.oprleft
                                   AND c.castcontext OPERATOR(pg_catalog.=) 'i'))
                AND (o.oprright OPERATOR(pg_catalog.=) $2
                     OR EXISTS (SELECT FROM pg_catalog.pg_cast c
                                 WHERE c.castsource OPERATOR(pg_catalog.=) $2 AND c.casttarget OPERATOR(pg_catalog.=) o.oprright
                                   AND c.castcontext OPERATOR(pg_catalog.=) 'i')))",
        &[a.into(), b.into()],
    )
    .unwrap_or(false)
}

fn require_name(name: &str) {
    if name.is_empty() || name.len() > 63 {
        bad_argument(format!("\"{name}\" is not a valid name: 1 to 63 bytes"));
    }
}

#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn register_relation(name: &str, source: PgRelation, relation: PgRelation, contact_column: &str) {
    require_name(name);
    let src = source.oid();
    let reg = require_registered(src);
    require_table_owner(src, "register relations on it");
    require_table(relation.oid());
    require_trigger_right(relation.oid(), "register it as a relation");
    require_select(relation.oid());
    let (col_type, _) = require_column(relation.oid(), contact_column);
    let (key_type, _) = require_column(src, &reg.key);
    if !comparable(col_type, key_type) {
        fail(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "column \"{contact_column}\" of {} has type {}, which cannot be compared with the key \"{}\" ({})",
                regclass_text(relation.oid()),
                registry::type_name(col_type),
                reg.key,
                registry::type_name(key_type)
            ),
        );
    }
    record(
        "relation",
        src,
        name,
        relation.oid(),
        "INSERT INTO segments.relation (source, name, relation, contact_column) VALUES ($1, $2, $3, $4)",
        vec![relation.oid().into(), contact_column.into()],
    );
}

#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn register_lookup(
    name: Option<&str>,
    source: Option<PgRelation>,
    via_column: Option<&str>,
    target: Option<PgRelation>,
    target_key: default!(Option<&str>, "NULL"),
) {
    let (name, source) = (required(name, "name"), required(source, "source"));
    let (via_column, target) = (required(via_column, "via_column"), required(target, "target"));
    require_name(name);
    let src = source.oid();
    require_registered(src);
    require_table_owner(src, "register lookups on it");
    require_table(target.oid());
    require_trigger_right(target.oid(), "register it as a lookup target");
    require_select(target.oid());
    let (via_type, _) = require_column(src, via_column);
    let key = match target_key {
        Some(k) => k.to_string(),
        None => registry::primary_key(target.oid()).unwrap_or_else(|| {
            bad_argument(format!("{} has no single-column primary key; name target_key", regclass_text(target.oid())))
        }),
    };
    let (key_type, _) = require_column(target.oid(), &key);
    if !is_unique(target.oid(), &key) {
        bad_argument(format!(
            "column \"{key}\" of {} is not unique: a lookup must find at most one row",
            regclass_text(target.oid())
        ));
    }
    if !comparable(via_type, key_type) {
        fail(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!("column \"{via_column}\" cannot be compared with \"{key}\" of {}", regclass_text(target.oid())),
        );
    }
    record(
        "lookup",
        src,
        name,
        target.oid(),
        "INSERT INTO segments.lookup (source, name, via_column, target, target_key) VALUES ($1, $2, $3, $4, $5)",
        vec![via_column.into(), target.oid().into(), key.as_str().into()],
    );
}

/// Records a relation or lookup named `name` of `source` (refusing a taken
/// name), then maintains `table`: installs its triggers and syncs them.
/// `insert` takes the source and the name as $1 and $2, then `rest`.
fn record(kind: &str, source: pg_sys::Oid, name: &str, table: pg_sys::Oid, insert: &str, rest: Vec<DatumWithOid<'_>>) {
    require_origin();
    as_owner(|| {
        let taken = spi::get::<bool>(
            &format!(
                "SELECT EXISTS (SELECT FROM segments.{kind} WHERE source OPERATOR(pg_catalog.=) $1 AND name OPERATOR(pg_catalog.=) $2)"
            ),
            &[source.into(), name.into()],
        )
        .unwrap_or(false);
        if taken {
            fail(
                PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
                format!("{kind} \"{name}\" is already registered for {}", regclass_text(source)),
            );
        }
        let mut args: Vec<DatumWithOid<'_>> = vec![source.into(), name.into()];
        args.extend(rest);
        spi::run(insert, &args);
        maintain::install::install_triggers(table);
        maintain::install::sync_source(source);
        crate::state::cache::definitions_changed();
    });
}

/// `segments._sync_update_trigger(oid)`, for the event trigger of
/// sql/before_triggers.sql.
#[pg_extern(name = "_sync_update_trigger")]
#[search_path(pg_catalog, pg_temp)]
fn sync_update_trigger_sql(table: pg_sys::Oid) {
    as_owner(|| maintain::install::sync_update_trigger(table));
}

extension_sql_file!(
    "../../sql/before_triggers.sql",
    name = "before_triggers",
    requires = [sync_update_trigger_sql, "maintain_trigger"]
);
