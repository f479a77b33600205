//! The subscriber's side of logical replication (`state::replication`):
//! rows of the segment catalog applied by a subscription change what this
//! database's backends have cached, as the API's own changes do.

use pgrx::prelude::*;

/// `segments._catalog_applied()`: fires only under
/// `session_replication_role = replica`, that is in a subscription's apply
/// worker (`ENABLE REPLICA TRIGGER`, sql/replication.sql), which sends no
/// invalidation of its own: without it a backend kept resolving a segment's
/// name to a segment the publisher had dropped and created again.
#[pg_trigger]
fn _catalog_applied<'a>(
    _trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    crate::state::cache::definitions_changed();
    Ok(None)
}

extension_sql_file!("../../sql/replication.sql", name = "replication", requires = [_catalog_applied]);
