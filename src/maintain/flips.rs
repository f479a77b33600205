//! Flips: a contact entering or leaving a segment, decided without a query
//! (by the row filters of an UPDATE, by a relation row that decides alone)
//! or listed by a recompute for a few contacts, and written into the
//! membership table without a statement (`pg::heap`), with the semantics of
//! the statements they replace:
//!
//! - a segment gaining members is locked against drop_segment first, and
//!   skipped if it was dropped meanwhile (`state::liveness`);
//! - a member that is already there (a concurrent writer won) is not
//!   inserted twice, nor counted;
//! - a member already gone is not counted; under REPEATABLE READ a segment
//!   or member changed since the snapshot is a serialization failure;
//! - counts go to this backend's own delta rows (`state::counts::add`);
//!   the change log of tracked segments is written by a statement.

use std::collections::HashMap;

use pgrx::prelude::*;

use super::notify::Entry;
use super::definitions::Target;
use super::feeds::Feed;
use super::recompute::{account, Delta};
use crate::pg::backend::transaction_start;
use crate::pg::heap::statement;
use crate::pg::spi::{run_kept, text_array};
use crate::state::registry::Registered;
use crate::state::counts;
use crate::state::liveness::lock_live;
use crate::state::privilege::pinned_search_path;

/// A contact entering (or leaving) a segment.
pub struct Flip {
    pub segment: i64,
    /// The contact's key, in its text form.
    pub key: String,
    pub enter: bool,
    /// The catalog generation it was decided under (`cache::generation`);
    /// None when the segments it names may have been read from the catalog
    /// before that generation was taken (a recompute by contact): its
    /// segment is then looked up and locked as a row (`lock_live`).
    pub generation: Option<u64>,
}

/// Applies membership flips of `targets` of feed `f`: the contacts' rows
/// are locked (by the UPDATE itself, or `recompute::lock_contacts`).
pub fn apply(f: &Feed, targets: &[&Target], flips: &[&Flip], summary: &mut Vec<Entry>) {
    let tracked: Vec<i64> = targets.iter().filter(|t| t.track_changes).map(|t| t.id).collect();
    let deltas = write(&f.reg, flips, &tracked);
    account(targets, &deltas, summary);
}

/// Writes `flips` into the source's membership table, the changes of the
/// `tracked` segments into their change log; returns how many members
/// entered and left each segment.
pub fn write(reg: &Registered, flips: &[&Flip], tracked: &[i64]) -> HashMap<i64, Delta> {
    write_as(reg, flips, tracked, false)
}

/// `write` for contacts that an INSERT has just added (entering flips
/// only): they have no memberships yet, and nobody else sees them, so each
/// goes in as a plain INSERT would put it, without looking for it first (a
/// duplicate is an ERROR, as for the set-based statement it replaces).
pub fn write_new(reg: &Registered, flips: &[&Flip], tracked: &[i64]) -> HashMap<i64, Delta> {
    write_as(reg, flips, tracked, true)
}

fn write_as(reg: &Registered, flips: &[&Flip], tracked: &[i64], new: bool) -> HashMap<i64, Delta> {
    let (deltas, done) = write_members(reg.membership_relid, &reg.key, flips, new);
    let logged: Vec<&&Flip> =
        flips.iter().zip(&done).filter(|(flip, &done)| done && tracked.contains(&flip.segment)).map(|(flip, _)| flip).collect();
    if !logged.is_empty() {
        let ids: Vec<i64> = logged.iter().map(|l| l.segment).collect();
        let keys: Vec<String> = logged.iter().map(|l| l.key.clone()).collect();
        let changes: Vec<String> = logged.iter().map(|l| if l.enter { "enter" } else { "leave" }.to_string()).collect();
        let args = [ids.into_datum().expect("an int8[] datum"), text_array(&keys), text_array(&changes)];
        pinned_search_path(|| {
            Spi::connect_mut(|_| {
                run_kept(
                    "INSERT INTO segments.changes (segment_id, key, change)
                     SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.text[]),
                                              pg_catalog.unnest($3::pg_catalog.text[]))",
                    &[pg_sys::INT8ARRAYOID, pg_sys::TEXTARRAYOID, pg_sys::TEXTARRAYOID],
                    &args,
                )
            })
        });
    }
    deltas
}

/// Applies `flips` to the membership table `membership` (key column `key`)
/// (`new`: for new contacts, `write_new`) and adds the count deltas. Returns how many members entered and left
/// each segment, and which flips took effect (for the change log).
fn write_members(membership: pg_sys::Oid, key: &str, flips: &[&Flip], new: bool) -> (HashMap<i64, Delta>, Vec<bool>) {
    statement(|st| {
        let mut entering: Vec<i64> = flips.iter().filter(|f| f.enter).map(|f| f.segment).collect();
        entering.sort_unstable();
        entering.dedup();
        // None as soon as one flip was decided without a generation.
        let decided = flips.iter().map(|f| f.generation).min().flatten();
        let live = lock_live(st, &entering, decided);
        let table = st.open(membership);
        let (segment_att, key_att, entered_att) =
            (table.attnum("segment_id"), table.attnum(key), table.attnum("entered_at"));
        let input = table.input(key_att);
        let now = pg_sys::Datum::from(transaction_start());
        let mut deltas: HashMap<i64, Delta> = HashMap::new();
        let mut done = Vec::with_capacity(flips.len());
        for f in flips {
            let applied = if f.enter && !live.contains(&f.segment) {
                false
            } else {
                let values =
                    [(segment_att, pg_sys::Datum::from(f.segment)), (key_att, input.datum(&f.key)), (entered_att, now)];
                if f.enter && new {
                    table.insert(&values);
                    true
                } else if f.enter {
                    table.insert_if_absent(&values)
                } else {
                    table.delete(&values[..2])
                }
            };
            if applied {
                let d = deltas.entry(f.segment).or_default();
                if f.enter {
                    d.entered += 1;
                } else {
                    d.left += 1;
                }
            }
            done.push(applied);
            st.reset_per_tuple();
        }
        drop(table);
        let mut changed: Vec<(i64, i64)> =
            deltas.iter().filter(|(_, d)| d.entered != d.left).map(|(&id, d)| (id, d.entered - d.left)).collect();
        changed.sort_unstable();
        counts::add(st, &changed);
        (deltas, done)
    })
}
