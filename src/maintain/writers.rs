//! Definition changes against concurrent writers: creating or redefining
//! an active segment waits for the writers of its tables and blocks new ones
//! (`block_writers`); a writer under REPEATABLE READ whose snapshot predates
//! a committed change of definitions fails with 40001 (`check_definitions`).

use pgrx::prelude::*;

use crate::pg::backend::{lock_table, repeatable_read};
use crate::pg::error::{not_supported, serialization_failure};
use crate::pg::spi;
use crate::state::registry::{self, Registered};

/// Waits for every transaction writing a table whose rows active segments
/// of `reg` may read (the source, its relations and lookup targets), then
/// for those writing its membership table (`refresh_due`), and keeps new
/// ones waiting until this transaction ends (`SHARE` mode, as `CREATE
/// INDEX` takes it): what creating or redefining an active segment needs.
/// Its members are computed afterwards, under a snapshot that sees what the
/// writers committed; a writer that comes later finds the new definition
/// (`check_definitions` under REPEATABLE READ). Without this, a writer that
/// maintained the segments under the old catalog and a fill that could not
/// see its change yet left a wrong membership (a contact entering the old
/// definition stayed in the new one). Under REPEATABLE READ the members
/// would be computed under a snapshot older than what it waited for:
/// refused. Data tables first: writers lock them before the membership
/// table, so the order cannot deadlock with a single statement.
pub fn block_writers(reg: &Registered) {
    if repeatable_read() {
        not_supported(
            "an active segment can be created or redefined only under READ COMMITTED".into(),
            "under REPEATABLE READ its members would be computed under a snapshot that misses what concurrent writers commit",
        );
    }
    let mut tables = registry::registered_tables(reg.relid);
    tables.push(reg.membership_relid);
    tables.iter().for_each(|&t| lock_table(t, pg_sys::ShareLock));
}

/// Under REPEATABLE READ, fails with 40001 unless the active segments of
/// `sources` read under the transaction's snapshot are those committed now:
/// maintenance decided under an older catalog than the one a concurrent
/// `create_segment` or `redefine_segment` filled its members under would
/// leave them wrong (`block_writers`).
pub fn check_definitions(sources: &[pg_sys::Oid]) {
    if !repeatable_read() || sources.is_empty() {
        return;
    }
    let list: Vec<String> = sources.iter().map(|s| s.to_u32().to_string()).collect();
    let sql = format!(
        "SELECT pg_catalog.string_agg(id::pg_catalog.text OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) definition,
                                      ',' ORDER BY id)
           FROM segments.segment_def
          WHERE kind OPERATOR(pg_catalog.=) 'active'
            AND source::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ('{{{}}}'::pg_catalog.oid[])",
        list.join(",")
    );
    let seen = spi::get::<String>(&sql, &[]);
    let now = Spi::connect_mut(|_| {
        spi::run_latest(&sql);
        spi::first::<String>(1)
    });
    if seen != now {
        serialization_failure("change of segment definitions");
    }
}
