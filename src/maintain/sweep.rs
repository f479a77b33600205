//! The sweep: time-relative segments brought up to date with the passing
//! of time (`refresh_due`, called by the background worker in `sweeper`).

use std::collections::HashMap;

use pgrx::prelude::*;

use super::definitions::{sweep_horizon, swept_since, time_relative};
use super::notify::notify;
use super::recompute::{by_level, lock_contacts, Rows};
use super::writers::check_definitions;
use crate::pg::backend::lock_table;
use crate::pg::spi;
use crate::state::registry;
use crate::state::privilege::as_owner;

/// Brings every time-relative active segment up to date with the passing of
/// time: only the contacts whose time values crossed a boundary since the
/// segment's last sweep are recomputed (and, for segments that reference
/// those, the same contacts). Returns how many memberships changed: none
/// on a logical subscriber, whose publisher sweeps (`state::replication`).
pub fn refresh_due() -> i64 {
    if crate::state::replication::subscription().is_some() {
        return 0;
    }
    let sources = spi::get::<Vec<pg_sys::Oid>>(
        "SELECT COALESCE(pg_catalog.array_agg(relid::pg_catalog.oid ORDER BY relid), '{}') FROM segments.source",
        &[],
    )
    .unwrap_or_default();
    as_owner(|| {
        // As the owner, who sees every backend's transaction start.
        let horizon = sweep_horizon();
        let mut changed = 0;
        for source in sources {
            let Some(reg) = registry::registered(source) else { continue };
            // Before the definitions are read: a create_segment or
            // redefine_segment in progress is waited for (`block_writers`).
            lock_table(reg.membership_relid, pg_sys::RowExclusiveLock);
            check_definitions(&[source]);
            let mut swept: HashMap<i64, Vec<String>> = HashMap::new();
            let mut summary = vec![];
            for t in time_relative(source) {
                let sweep = t.compiled(&reg).sweep(&swept_since(t.id));
                let mut keys: Vec<String> = match &sweep {
                    Some(sql) => {
                        spi::rows(&format!("SELECT DISTINCT k FROM ({sql}) x WHERE k IS NOT NULL"), &[], |r| spi::column(r, 1))
                            .into_iter()
                            .flatten()
                            .collect()
                    }
                    None => vec![],
                };
                for dep in depends_on(t.id) {
                    keys.extend(swept.get(&dep).cloned().unwrap_or_default());
                }
                keys.sort();
                keys.dedup();
                if !keys.is_empty() {
                    lock_contacts(&reg, &keys);
                    let (n, entries) = by_level(&[&t], &reg, Rows::Keys(&keys));
                    changed += n;
                    summary.extend(entries);
                }
                if sweep.is_some() {
                    spi::run(
                        "UPDATE segments.segment_def SET swept_at = $2 WHERE id OPERATOR(pg_catalog.=) $1",
                        &[t.id.into(), horizon.into()],
                    );
                }
                swept.insert(t.id, keys);
            }
            notify(source, summary);
        }
        changed
    })
}

fn depends_on(id: i64) -> Vec<i64> {
    spi::get::<Vec<i64>>(
        "SELECT COALESCE(pg_catalog.array_agg(depends_on), '{}') FROM segments.dependency WHERE segment_id OPERATOR(pg_catalog.=) $1",
        &[id.into()],
    )
    .unwrap_or_default()
}
