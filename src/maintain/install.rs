//! Trigger installation: which maintenance triggers a registered table has
//! (INSERT, DELETE and TRUNCATE always; UPDATE only while an active segment
//! reads the table, and `OF` the columns that matter), and the record of
//! what each segment reads that decides it.

use pgrx::prelude::*;
use crate::pg::spi;
use segments_lang::codegen::{self, ident};

use crate::pg::error::{fail, Code};
use crate::state::registry;

fn has_trigger(table: pg_sys::Oid, name: &str) -> bool {
    spi::get::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid OPERATOR(pg_catalog.=) $1
                          AND tgname OPERATOR(pg_catalog.=) $2)",
        &[table.into(), name.into()],
    )
    .unwrap_or(false)
}

/// Installs the maintenance triggers on a registered table, once.
pub fn install_triggers(table: pg_sys::Oid) {
    if has_trigger(table, "segments_maintain_insert") {
        return;
    }
    let t = registry::qualified_name(table);
    Spi::run(&format!(
        "CREATE TRIGGER segments_maintain_insert AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows
             FOR EACH STATEMENT EXECUTE FUNCTION segments.maintain();
         CREATE TRIGGER segments_maintain_delete AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows
             FOR EACH STATEMENT EXECUTE FUNCTION segments.maintain();
         CREATE TRIGGER segments_maintain_truncate AFTER TRUNCATE ON {t}
             FOR EACH STATEMENT EXECUTE FUNCTION segments.maintain();"
    ))
    .unwrap_or_else(|e| fail(Code::ERRCODE_INTERNAL_ERROR, format!("installing maintenance triggers: {e}")));
}

/// (Re)creates the triggers that notice UPDATEs of `table` worth
/// maintenance. They fire only for UPDATEs that name a column that
/// identifies a row's contact or that an active segment reads (`UPDATE OF`,
/// a test of the statement's target list: no expression, nothing parsed per
/// statement); the row trigger then compares those columns itself. A
/// `BEFORE UPDATE` row trigger may change columns an UPDATE does not name:
/// while the table has one, they fire for every UPDATE (the event trigger
/// `segments_before_triggers` calls this when one is created). No active
/// segment reads the table: no UPDATE trigger at all.
pub fn sync_update_trigger(table: pg_sys::Oid) {
    let columns = watched_columns(table, None);
    let t = registry::qualified_name(table);
    if columns.is_empty() {
        drop_triggers(table, &["segments_maintain_update_row", "segments_maintain_update"]);
        return;
    }
    let before = spi::get::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                         WHERE t.tgrelid OPERATOR(pg_catalog.=) $1 AND NOT t.tgisinternal
                           AND t.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) $2 OPERATOR(pg_catalog.=) $2)",
        &[table.into(), BEFORE_UPDATE_ROW.into()],
    )
    .unwrap_or(true);
    // Already as wanted (most segments read columns read before): replacing
    // the triggers would invalidate every backend's cache of the table.
    let mut wanted = if before { vec![] } else { columns.clone() };
    wanted.sort();
    if update_trigger_columns(table).as_ref() == Some(&wanted) {
        return;
    }
    let of = match before {
        true => String::new(),
        false => format!(" OF {}", columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")),
    };
    // The statement trigger applies what the row trigger collected.
    spi::run(&format!(
        "CREATE OR REPLACE TRIGGER segments_maintain_update AFTER UPDATE{of} ON {t}
             FOR EACH STATEMENT EXECUTE FUNCTION segments.maintain();
         CREATE OR REPLACE TRIGGER segments_maintain_update_row AFTER UPDATE{of} ON {t}
             FOR EACH ROW EXECUTE FUNCTION segments.maintain()"
    ), &[]);
}

/// The columns the UPDATE triggers of `table` name, sorted (empty: they
/// fire for every UPDATE); None without both of them.
pub fn update_trigger_columns(table: pg_sys::Oid) -> Option<Vec<String>> {
    let both = spi::get::<i64>(
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger WHERE tgrelid OPERATOR(pg_catalog.=) $1
            AND tgname OPERATOR(pg_catalog.=) ANY (ARRAY['segments_maintain_update_row', 'segments_maintain_update'])",
        &[table.into()],
    );
    if both != Some(2) {
        return None;
    }
    spi::get::<Vec<String>>(
        "SELECT COALESCE(pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY a.attname), '{}')
           FROM pg_catalog.pg_trigger t
           JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.tgrelid
                                         AND a.attnum OPERATOR(pg_catalog.=) ANY (t.tgattr::pg_catalog.int2[])
          WHERE t.tgrelid OPERATOR(pg_catalog.=) $1 AND t.tgname OPERATOR(pg_catalog.=) 'segments_maintain_update_row'",
        &[table.into()],
    )
}

/// After active segment `id` was added to `source`: the UPDATE triggers of
/// the tables it reads, where they do not already name every column it
/// reads. Adding a segment only adds columns: the other tables' triggers
/// stay right, and recomputing every table's columns from every segment's
/// reads cost a tenant's segment more than its fill.
pub fn sync_for_new_segment(id: i64, source: pg_sys::Oid) {
    let reads = spi::rows(
        "SELECT relid::pg_catalog.oid, columns FROM segments.segment_read WHERE segment_id OPERATOR(pg_catalog.=) $1",
        &[id.into()],
        |r| (spi::column::<pg_sys::Oid>(r, 1).unwrap_or(pg_sys::Oid::INVALID), spi::column::<Vec<String>>(r, 2).unwrap_or_default()),
    );
    for (table, columns) in reads {
        let covered = update_trigger_columns(table)
            .is_some_and(|named| named.is_empty() || columns.iter().all(|c| named.binary_search(c).is_ok()));
        if !covered {
            sync_source(source);
            return;
        }
    }
}

/// `pg_trigger.tgtype` of a BEFORE UPDATE row trigger: ROW | BEFORE | UPDATE.
const BEFORE_UPDATE_ROW: i32 = 1 | 2 | 16;

/// The columns of `table` whose change matters to maintenance: those that
/// identify a row's contact (source key, relation contact column, lookup
/// target key) and those active segments read; for `source` only, if given.
/// None when no active segment reads the table.
pub fn watched_columns(table: pg_sys::Oid, source: Option<pg_sys::Oid>) -> Vec<String> {
    spi::get::<Vec<String>>(
        "WITH reads AS (
             SELECT r.columns FROM segments.segment_read r
               JOIN segments.segment_def d ON d.id OPERATOR(pg_catalog.=) r.segment_id
              WHERE r.relid OPERATOR(pg_catalog.=) $1 AND d.kind OPERATOR(pg_catalog.=) 'active'
                AND ($2::pg_catalog.oid IS NULL OR d.source OPERATOR(pg_catalog.=) $2))
         SELECT COALESCE(pg_catalog.array_agg(DISTINCT c ORDER BY c), '{}') FROM (
             SELECT key_column::pg_catalog.text AS c FROM segments.source
              WHERE relid OPERATOR(pg_catalog.=) $1 AND ($2 IS NULL OR relid OPERATOR(pg_catalog.=) $2)
             UNION SELECT contact_column::pg_catalog.text FROM segments.relation
              WHERE relation OPERATOR(pg_catalog.=) $1 AND ($2 IS NULL OR source OPERATOR(pg_catalog.=) $2)
             UNION SELECT target_key::pg_catalog.text FROM segments.lookup
              WHERE target OPERATOR(pg_catalog.=) $1 AND ($2 IS NULL OR source OPERATOR(pg_catalog.=) $2)
             UNION SELECT pg_catalog.unnest(columns) FROM reads) x
          WHERE EXISTS (SELECT FROM reads)",
        &[table.into(), source.into()],
    )
    .unwrap_or_default()
}

/// Re-syncs the UPDATE row triggers of every table `source` is registered with.
pub fn sync_source(source: pg_sys::Oid) {
    for t in registry::registered_tables(source) {
        sync_update_trigger(t);
    }
}

/// Removes the maintenance triggers from a table no registration uses any more.
pub fn remove_unused_triggers(table: pg_sys::Oid) {
    if registry::is_registered_table(table) {
        // Still registered for another source: its segments decide.
        sync_update_trigger(table);
        return;
    }
    drop_triggers(
        table,
        &[
            "segments_maintain_insert",
            "segments_maintain_update",
            "segments_maintain_update_row",
            "segments_maintain_delete",
            "segments_maintain_truncate",
        ],
    );
}

/// Drops the UPDATE triggers of `table` (until `sync_update_trigger`): an
/// `ALTER COLUMN … TYPE` of a column in their `UPDATE OF` list is refused
/// by PostgreSQL while they exist.
pub fn drop_update_triggers(table: pg_sys::Oid) {
    drop_triggers(table, &["segments_maintain_update_row", "segments_maintain_update"]);
}

/// Drops those of the triggers `names` that `table` has, each checked first:
/// DROP TRIGGER IF EXISTS would tell the caller about a trigger that was
/// never there (the UPDATE triggers exist only while an active segment reads
/// the table).
fn drop_triggers(table: pg_sys::Oid, names: &[&str]) {
    let t = registry::qualified_name(table);
    for name in names {
        if has_trigger(table, name) {
            spi::run(&format!("DROP TRIGGER {name} ON {t}"), &[]);
        }
    }
}

/// Records the tables and columns a segment reads (its source always),
/// replacing what was recorded.
pub fn set_reads(id: i64, source: pg_sys::Oid, columns: &[(String, String, String)]) {
    spi::run("DELETE FROM segments.segment_read WHERE segment_id OPERATOR(pg_catalog.=) $1", &[id.into()]);
    add_reads(id, source, columns);
}

/// `set_reads` for a segment that has none recorded yet.
pub fn add_reads(id: i64, source: pg_sys::Oid, columns: &[(String, String, String)]) {
    let tables: Vec<String> = columns.iter().map(|(s, t, _)| codegen::qualified(s, t)).collect();
    let names: Vec<String> = columns.iter().map(|(_, _, c)| c.clone()).collect();
    spi::run(
        "INSERT INTO segments.segment_read (segment_id, relid, columns)
         SELECT $1, r, COALESCE(pg_catalog.array_agg(DISTINCT c) FILTER (WHERE c IS NOT NULL), '{}')
           FROM (SELECT $2::pg_catalog.oid::pg_catalog.regclass AS r, NULL::pg_catalog.text AS c
                 UNION ALL
                 SELECT t::pg_catalog.regclass, c
                   FROM ROWS FROM (pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.text[])) AS x(t, c)) x
          GROUP BY r",
        &[id.into(), source.into(), tables.into(), names.into()],
    );
}
