//! New contacts: the rows an INSERT adds to the source enter the segments
//! that read only the contact's row, and the clock (`Feed::local`,
//! `Feed::clocked`), by their row filters,
//! in one pass over the transition table, whichever tenants they belong
//! to, and the memberships are written without a statement (`flips`). A
//! tenant's part is built once per backend; a set-based statement per
//! tenant and segment cost a bulk load of many tenants twice the load
//! (bench/findings.md). The other segments are left to the caller.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::feeds::Feed;
use super::flips::{self, Flip};
use super::notify::Entry;
use super::recompute::{account, Delta};
use crate::pg::trigger::{Row, Trigger};

/// How many decided memberships are written at a time: a load of a million
/// contacts must not hold millions of them.
const BATCH: usize = 200_000;

/// Enters the new contacts of the INSERT firing `trigger` (a statement
/// trigger of the source only) into the segments of `f` (or of their
/// tenants' parts) that it decides in process; `generation`: the catalog
/// generation the feeds were read under. Returns, for a source with
/// tenants, the parts with other segments and their new contacts' keys,
/// by tenant.
pub fn new_contacts(trigger: &Trigger<'_>, f: &Feed, generation: u64, summary: &mut Vec<Entry>) -> Vec<(Rc<Feed>, Vec<String>)> {
    let mut writer = Writer { f, flips: vec![], tracked: vec![], deltas: HashMap::new() };
    let mut parts: BTreeMap<String, (Rc<Feed>, Vec<String>)> = BTreeMap::new();
    match &f.parts {
        None => trigger.transition_rows(true, |row| {
            writer.decide(f, row, generation);
        }),
        Some(p) => trigger.transition_rows(true, |row| {
            // A contact without a tenant is in no segment.
            let Some(tenant) = row.text(p.tenant_attnum) else { return };
            let (part, keys) = parts.entry(tenant).or_insert_with_key(|t| (f.part(trigger, t), vec![]));
            if let Some(key) = writer.decide(part, row, generation).filter(|_| !part.decides_all()) {
                keys.push(key);
            }
        }),
    }
    writer.flush();
    let deltas = std::mem::take(&mut writer.deltas);
    if f.parts.is_none() {
        account(&f.decided(), &deltas, summary);
    }
    for (part, _) in parts.values() {
        account(&part.decided(), &deltas, summary);
    }
    parts.into_values().filter(|(part, _)| !part.decides_all()).collect()
}

/// The memberships decided so far, written every `BATCH`.
struct Writer<'f> {
    f: &'f Feed,
    flips: Vec<Flip>,
    /// Of the segments in `flips`, those whose changes are logged.
    tracked: Vec<i64>,
    deltas: HashMap<i64, Delta>,
}

impl Writer<'_> {
    /// The memberships of the new contact `row` in the segments `part`
    /// decides in process; returns its key.
    fn decide(&mut self, part: &Feed, row: Row<'_>, generation: u64) -> Option<String> {
        // The feed's only role is the source: `attnums[0]` is the key's.
        let key = row.text(part.attnums[0])?;
        for (filters, targets) in [(&part.filters, &part.local), (&part.clocked_filters, &part.clocked)] {
            let Some(filters) = filters else { continue };
            for (j, hit) in filters.matches(row).into_iter().enumerate() {
                if hit {
                    let target = &part.targets[targets[j]];
                    if target.track_changes && !self.tracked.contains(&target.id) {
                        self.tracked.push(target.id);
                    }
                    let flip = Flip { segment: target.id, key: key.clone(), enter: true, generation: Some(generation) };
                    self.flips.push(flip);
                }
            }
        }
        if self.flips.len() >= BATCH {
            self.flush();
        }
        Some(key)
    }

    fn flush(&mut self) {
        if self.flips.is_empty() {
            return;
        }
        let mut flips = std::mem::take(&mut self.flips);
        // By segment, each segment's contacts in the order of the load:
        // neighbours in the primary key (segment, contact) of the
        // membership table, whose pages then stay at hand.
        flips.sort_by_key(|f| f.segment);
        for (id, d) in flips::write_new(&self.f.reg, &flips.iter().collect::<Vec<_>>(), &self.tracked) {
            let total = self.deltas.entry(id).or_default();
            total.entered += d.entered;
            total.left += d.left;
        }
    }
}
