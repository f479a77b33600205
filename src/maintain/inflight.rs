//! Writes that meet rows another transaction has written and not yet
//! committed. No snapshot of the trigger shows those rows, so the later of
//! the two writers waits for the earlier and recomputes what it then sees
//! (docs/maintenance.md, "Concurrent writers"):
//!
//! - **Rows referenced by key and being inserted** (contacts, referenced by
//!   relation rows; lookup rows, referenced by contacts). The inserter takes
//!   a shared lock on the bucket of each new key (`announce`); a writer that
//!   references a key whose row it does not find takes the bucket
//!   exclusively (`await_keys`), which waits for the inserts in progress and
//!   makes the inserts that come later wait for its commit, and looks again.
//! - **Lookup rows a new or re-pointed contact reads**, locked FOR SHARE
//!   before the contact is recomputed (`share_lookups`): an UPDATE of the
//!   row in progress is waited for, and one that comes later waits for this
//!   transaction and then finds the contact (`recompute::contacts_via`). A
//!   contact that already pointed at the row needs no such lock: the lookup
//!   writer finds it and waits for its lock (`recompute::lock_contacts`).
//!
//! Under REPEATABLE READ the waits end in 40001 where the snapshot no longer
//! shows what the recompute needs (`recompute::require_unchanged`).

use pgrx::prelude::*;
use segments_lang::codegen::{ident, qualified};
use segments_lang::model::Lookup;

use super::recompute::{lock_contacts, Rows};
use crate::pg::backend::{lock_key_bucket, relation_oid};
use crate::pg::heap::key_buckets;
use crate::pg::spi::{result_column, run_kept, text_array, with_transition_tables};
use crate::pg::trigger::Trigger;
use crate::state::registry::Registered;

/// Before rows with the keys `texts` (column `column` of table `relid`) are
/// seen by anyone: the writers that reference them meanwhile wait for this
/// transaction (shared bucket locks).
pub fn announce<'t>(relid: pg_sys::Oid, column: &str, texts: impl IntoIterator<Item = &'t str>) {
    for bucket in key_buckets(relid, column, texts) {
        lock_key_bucket(relid, bucket, false);
    }
}

/// Keys `texts` of column `column` of table `relid` referenced and not found:
/// waits for the transactions inserting one of them, and makes those that
/// insert one later wait for this one (exclusive bucket locks).
pub fn await_keys(relid: pg_sys::Oid, column: &str, texts: &[String]) {
    for bucket in key_buckets(relid, column, texts.iter().map(String::as_str)) {
        lock_key_bucket(relid, bucket, true);
    }
}

/// The keys of the rows an INSERT into table `relid` added (column `attnum`
/// of `column`), announced.
pub fn announce_inserted(trigger: &Trigger<'_>, column: &str, attnum: i32) {
    let mut keys = vec![];
    trigger.transition_rows(true, |row| keys.extend(row.text(attnum)));
    announce(trigger.relid(), column, keys.iter().map(String::as_str));
}

/// `lock_contacts` for contacts that rows of a relation reference: a key
/// whose contact is not found may be one being inserted (`await_keys`).
/// Returns the keys whose contacts are locked, sorted.
pub fn lock_referenced_contacts(reg: &Registered, keys: &[String]) -> Vec<String> {
    let mut locked = lock_contacts(reg, keys);
    let missing: Vec<String> = keys.iter().filter(|k| locked.binary_search(k).is_err()).cloned().collect();
    if !missing.is_empty() {
        await_keys(reg.relid, &reg.key, &missing);
        locked.extend(lock_contacts(reg, &missing));
        locked.sort();
        locked.dedup();
    }
    locked
}

/// Locks FOR SHARE, in the order of their keys, the rows of `lookups` that
/// the contacts `rows` point at (new ones, or ones a statement just pointed
/// elsewhere: no other transaction can find them through the lookup rows
/// yet), before they are recomputed. A contact pointing at a key with no row
/// may point at one being inserted (`await_keys`).
pub fn share_lookups(reg: &Registered, lookups: &[Lookup], rows: Rows) {
    let (from, in_keys, types, args) = match rows {
        Rows::New(_) => ("new_rows".to_string(), String::new(), vec![], vec![]),
        Rows::Keys(keys) => (reg.source.clone(), reg.and_key_in_param("s"), vec![pg_sys::TEXTARRAYOID], vec![text_array(keys)]),
        Rows::All => return,
    };
    for l in lookups {
        let (via, key) = (ident(&l.via_column), ident(&l.target_key));
        let sql = format!(
            "WITH v AS MATERIALIZED (SELECT DISTINCT s.{via} AS v FROM {from} AS \"s\" WHERE s.{via} IS NOT NULL{in_keys}),
                  locked AS MATERIALIZED (
                      SELECT l.{key} AS k FROM {} l
                       WHERE l.{key} OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT v.v FROM v))
                       ORDER BY l.{key} FOR SHARE OF l)
             SELECT v.v::pg_catalog.text FROM v
              WHERE NOT EXISTS (SELECT FROM locked WHERE locked.k OPERATOR(pg_catalog.=) v.v)",
            qualified(&l.target.schema, &l.target.name)
        );
        let lock = || {
            let run = || {
                run_kept(&sql, &types, &args);
                result_column::<String>(1).into_iter().flatten().collect::<Vec<String>>()
            };
            match rows {
                Rows::New(trigger) => with_transition_tables(trigger, run),
                _ => Spi::connect_mut(|_| run()),
            }
        };
        let missing = lock();
        if !missing.is_empty() {
            let (schema, name) = (cstring(&l.target.schema), cstring(&l.target.name));
            await_keys(relation_oid(&schema, &name), &l.target_key, &missing);
            lock();
        }
    }
}

fn cstring(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap_or_default()
}
