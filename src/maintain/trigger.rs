//! Trigger entry and dispatch: what each firing of `segments.maintain()`
//! does (`pg::trigger` is the C entry point, `fired` the handler).
//!
//! A single-row UPDATE of the source: the row trigger (`on_row_update`)
//! compares the watched columns of the two row images; the row filters of
//! the feed (`feeds`) decide the segments that read only the contact's row
//! and give flips; the statement trigger (`on_statement` → `on_update`)
//! writes them (`flips::apply`) and recomputes the contact for the other
//! segments (`recompute`). INSERT, DELETE and TRUNCATE go to `on_write`:
//! new source rows straight from the transition table, relation rows by
//! the segments their rows can change (`relevant`, `maintain_relation`),
//! everything else by the contacts touched.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::prelude::*;
use segments_lang::codegen::ident;

use super::admit;
use super::definitions::Target;
use super::feeds::{feeds, Feed, Role};
use super::flips::{self, Flip};
use super::notify::{notify, Entry};
use super::inflight::{announce_inserted, lock_referenced_contacts, share_lookups};
use super::recompute::{by_level, contacts_via, lock_contacts, require_same_contacts, Rows, FEW_CONTACTS};
use crate::pg::backend;
use crate::pg::guard::under_latest_snapshot;
use crate::pg::spi::{self, result_column, run_kept, run_latest_with, with_transition_tables};
use crate::pg::rowfilter::RowFilters;
use crate::pg::trigger::Row;
use crate::state::counts;
use crate::pg::trigger::{Op, Trigger};
use crate::state::cache;
use crate::state::registry::Registered;
use crate::state::privilege::{as_owner, pinned_search_path};

/// What `segments.maintain()` does with each firing.
pub fn fired(trigger: &Trigger<'_>) {
    if trigger.for_each_row() {
        on_row_update(trigger);
    } else {
        on_statement(trigger);
    }
}

/// What the row trigger collected inside an aborted subtransaction (or one
/// nested in it) never reaches a statement trigger, and must not reach the
/// next one.
pub fn forget_aborted(subxact: pg_sys::SubTransactionId) {
    UPDATED.with(|u| u.borrow_mut().values_mut().for_each(|v| v.retain(|p| p.subxact < subxact)));
}

/// Nothing collected survives an aborted transaction.
pub fn forget_all() {
    UPDATED.with(|u| u.borrow_mut().clear());
}

/// The contact keys (as text) an INSERT or DELETE touched, from its
/// transition table.
fn touched(trigger: &Trigger<'_>, reg: &Registered, role: &Role, table: &str) -> Vec<String> {
    let pick = |column: &str| format!("SELECT {}::pg_catalog.text AS k FROM {table}", ident(column));
    let sql = match role {
        Role::Source => pick(&reg.key),
        Role::Relation { contact_column, .. } => pick(contact_column),
        Role::Lookup { via_column, target_key, .. } => format!(
            "SELECT s.{}::pg_catalog.text AS k FROM {} s
              WHERE s.{} OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT t.{} FROM {table} t))",
            ident(&reg.key),
            reg.source,
            ident(via_column),
            ident(target_key)
        ),
    };
    let sql = format!("SELECT k FROM ({sql}) x WHERE k IS NOT NULL ORDER BY k");
    with_transition_tables(trigger, || {
        run_kept(&sql, &[], &[]);
        let keys: Vec<String> = result_column::<String>(1).into_iter().flatten().collect();
        match role {
            Role::Lookup { .. } => require_same_contacts(keys, &sql, &[], &[], "write of lookup rows"),
            _ => keys,
        }
    })
}

/// Under REPEATABLE READ, the memberships of deleted contacts that
/// `segments.forget_contacts` (which runs under the transaction's snapshot)
/// could not see: written by transactions that committed since, they go
/// under the latest snapshot, as PostgreSQL's own foreign key actions reach
/// rows committed after the snapshot.
fn forget_committed_since(trigger: &Trigger<'_>, reg: &Registered) {
    let key = ident(&reg.key);
    let sql = format!(
        "WITH gone AS (DELETE FROM {} AS m USING old_rows AS o WHERE m.{key} OPERATOR(pg_catalog.=) o.{key}
                       RETURNING m.segment_id),
              {}
         SELECT",
        reg.membership(),
        counts::counted(
            "SELECT segment_id, OPERATOR(pg_catalog.-) pg_catalog.count(*) FROM gone GROUP BY segment_id"
        )
    );
    with_transition_tables(trigger, || run_latest_with(&sql, &[], &[]));
}

/// What the rows of a relation's transition table ask for (`relevant`).
struct Relevant<'f> {
    /// The contacts of the rows that can change some target, sorted.
    keys: Vec<String>,
    /// The targets they can change: those whose filters one of the rows
    /// passes, and, if there is one, every target that references other
    /// segments (one of those may change).
    targets: Vec<&'f Target>,
    /// Inserted rows only: (index into `Feed::targets`, contact) for each
    /// target an inserted row of the contact decides (`Feed::decided`).
    decided: Vec<(usize, String)>,
}

/// What the rows of a transition table (`new`: the inserted rows, else the
/// deleted ones) of a relation (`Feed::relevance`) ask for. Decided in
/// process from the transition table, as the UPDATE row trigger decides on
/// the row images: the query over the transition table it replaces cost a
/// one-row INSERT more than the decision (bench/findings.md).
fn relevant<'f>(trigger: &Trigger<'_>, f: &'f Feed, new: bool) -> Relevant<'f> {
    let Some(relevance) = f.relevance(new) else { unreachable!("a feed of one relation") };
    let mut hit = vec![false; f.targets.len()];
    let mut keys = vec![];
    let mut decided = vec![];
    // `attnums[0]` is the relation's contact column (its only role).
    {
        trigger.transition_rows(new, |row| {
            let hits = relevance.matches(row);
            if hits.contains(&true) {
                if let Some(key) = row.text(f.attnums[0]) {
                    for (i, _) in hits.iter().enumerate().filter(|&(i, &h)| h && new && f.decided[i].is_some()) {
                        decided.push((i, key.clone()));
                    }
                    keys.push(key);
                    hit.iter_mut().zip(hits).for_each(|(h, r)| *h |= r);
                }
            }
        })
    }
    let any_hit = hit.contains(&true);
    let targets = f.targets.iter().zip(&hit).filter(|(t, &h)| h || (any_hit && t.depth > 0)).map(|(t, _)| t).collect();
    keys.sort();
    keys.dedup();
    decided.sort();
    decided.dedup();
    Relevant { keys, targets, decided }
}

/// What an updated row asks of the statement trigger, for one source.
enum Touch {
    /// Recompute the contact: for every target (None), or for these
    /// (indices into `Feed::targets`); `repointed`: the UPDATE changed which
    /// lookup rows the contact points at, or its key (`inflight::share_lookups`).
    Contact { key: String, targets: Option<Vec<usize>>, repointed: bool },
    /// Recompute the contacts that point at this lookup row.
    Lookup { via_column: String, target_type: String, value: String },
    /// The contact entered (or left) a row-local segment.
    Flip(Flip),
}

struct Pending {
    /// The subtransaction the row was updated in (see `on_subxact`).
    subxact: pg_sys::SubTransactionId,
    source: pg_sys::Oid,
    /// The tenant part of the feed that decided it (`Feed::tenant`); None
    /// also for rows of a source with tenants that say nothing of the
    /// contact's tenant (relations, lookups): sorted by tenant later.
    tenant: Option<String>,
    touch: Touch,
}

thread_local! {
    /// Per table, what the row trigger found in the rows an UPDATE changed
    /// in a column some segment reads, consumed by the statement trigger.
    static UPDATED: RefCell<HashMap<pg_sys::Oid, Vec<Pending>>> = RefCell::new(HashMap::new());
}

/// Row trigger of UPDATE, fired when the UPDATE names a watched column
/// (`sync_update_trigger`); a source for which none changed is skipped.
/// Row-local segments are decided here, on the two row images; everything
/// else is left to the statement trigger, by contact.
fn on_row_update(trigger: &Trigger<'_>) {
    let (old, new) = trigger.update_images();
    let table = trigger.relid();
    let subxact = backend::subtransaction();
    // Before the feeds: an invalidation while they are built is taken for a
    // change of what they say.
    let generation = cache::generation();
    let feeds = feeds(trigger);
    let mut seen = vec![];
    for f in feeds.iter().filter(|f| f.maintains()) {
        if f.watched.iter().all(|&n| old.same_bytes(&new, n) != Some(false)) {
            continue;
        }
        let mut push = |touch: Touch| seen.push(Pending { subxact, source: f.reg.relid, tenant: None, touch });
        match &f.parts {
            // A contact's row: the parts of its old and new tenant (a
            // contact moved to another tenant leaves the old one's segments).
            Some(parts) if parts.tenant_attnum > 0 => {
                let (was, is) = (old.text(parts.tenant_attnum), new.text(parts.tenant_attnum));
                let sides = if was == is {
                    vec![(was, Image::Both)]
                } else {
                    vec![(was, Image::Old), (is, Image::New)]
                };
                for (tenant, image) in sides {
                    let Some(tenant) = tenant else { continue };
                    let part = f.part(trigger, &tenant);
                    updated_row(&part, old, new, image, generation, &mut |touch| {
                        // The contacts that read this row as a lookup may
                        // belong to any tenant: sorted by tenant later.
                        let tenant = (!matches!(touch, Touch::Lookup { .. })).then(|| tenant.clone());
                        seen.push(Pending { subxact, source: f.reg.relid, tenant, touch })
                    });
                }
            }
            _ => updated_row(f, old, new, Image::Both, generation, &mut push),
        }
    }
    // Nothing seen: the statement trigger has nothing to do.
    if !seen.is_empty() {
        UPDATED.with(|u| u.borrow_mut().entry(table).or_default().extend(seen));
    }
}

/// Which images of an updated row belong to a feed: both, or, for a
/// contact moved to another tenant, the old one (the old tenant's part) or
/// the new one.
#[derive(Clone, Copy)]
enum Image {
    Both,
    Old,
    New,
}

/// What one updated row asks of feed `f` (`on_row_update`), given to `push`.
fn updated_row(f: &Feed, old: Row<'_>, new: Row<'_>, image: Image, generation: u64, push: &mut dyn FnMut(Touch)) {
    // A contact's row whose key stays: `attnums[0]` is the key's.
    if matches!(f.roles.as_slice(), [Role::Source]) && old.same_key(&new, f.attnums[0]) {
        // A tenant's filters leave out the tenant's condition: a contact
        // moved away leaves every segment it was in, and enters the new
        // tenant's as a new one would.
        let all = |filters: &RowFilters, row: Row<'_>, enter: bool| {
            filters.matches(row).into_iter().enumerate().filter(|&(_, hit)| hit).map(|(j, _)| (j, enter)).collect()
        };
        let flipped: Vec<(usize, bool)> = match (&f.filters, image) {
            (None, _) => vec![],
            (Some(filters), Image::Both) => filters.flips(old, new),
            (Some(filters), Image::Old) => all(filters, old, false),
            (Some(filters), Image::New) => all(filters, new, true),
        };
        // The other segments that read a column the UPDATE changed (all of
        // them for a contact changing tenant), and those that reference
        // segments if any of these may change.
        let moved = !matches!(image, Image::Both);
        let changed = |attnums: &[i32]| moved || attnums.iter().any(|&n| old.same_bytes(&new, n) == Some(false));
        // The segments of the clock that read a changed column: set to what
        // the new row gives now (a contact moved away leaves them all).
        let set: Vec<(usize, bool)> = match (&f.clocked_filters, image) {
            (None, _) => vec![],
            (Some(_), Image::Old) => f.clocked.iter().map(|&i| (i, false)).collect(),
            (Some(filters), _) if f.clocked.iter().any(|&i| changed(&f.reads[i])) => {
                let hits = filters.matches(new);
                f.clocked.iter().copied().zip(hits).filter(|&(i, _)| changed(&f.reads[i])).collect()
            }
            (Some(_), _) => vec![],
        };
        let others: Vec<usize> = (0..f.targets.len()).filter(|&i| !f.in_process(i)).collect();
        let mut recompute: Vec<usize> = others.iter().copied().filter(|&i| changed(&f.reads[i])).collect();
        if !recompute.is_empty() || !flipped.is_empty() || !set.is_empty() {
            recompute.extend(others.iter().copied().filter(|&i| f.targets[i].depth > 0));
            recompute.sort_unstable();
            recompute.dedup();
        }
        if flipped.is_empty() && set.is_empty() && recompute.is_empty() {
            return;
        }
        // The key is not NULL (same_key).
        let key = new.text(f.attnums[0]).unwrap_or_default();
        let repointed = f.pointers.iter().any(|&n| old.same_bytes(&new, n) != Some(true));
        let local = flipped.into_iter().map(|(j, enter)| (f.local[j], enter));
        for (i, enter) in local.chain(set) {
            let segment = f.targets[i].id;
            push(Touch::Flip(Flip { segment, key: key.clone(), enter, generation: Some(generation) }));
        }
        if !recompute.is_empty() {
            push(Touch::Contact { key, targets: Some(recompute), repointed });
        }
        return;
    }
    if let (Some(before), Some(after)) = (f.relevance(false), f.relevance(true)) {
        let (before, after) = (before.matches(old), after.matches(new));
        if !before.iter().chain(&after).any(|&hit| hit) {
            return;
        }
    }
    let pointers_moved = f.pointers.iter().any(|&n| old.same_bytes(&new, n) != Some(true));
    for (role, &n) in f.roles.iter().zip(&f.attnums) {
        let repointed = pointers_moved || !old.same_key(&new, n);
        for tuple in [old, new] {
            let Some(value) = tuple.text(n) else { continue };
            match role {
                Role::Lookup { via_column, target_type, .. } => {
                    push(Touch::Lookup { via_column: via_column.clone(), target_type: target_type.clone(), value })
                }
                Role::Source => push(Touch::Contact { key: value, targets: None, repointed }),
                Role::Relation { .. } => push(Touch::Contact { key: value, targets: None, repointed: false }),
            }
        }
    }
}

/// Recomputes `targets` of the feed for the contacts `keys` (None: all),
/// adding NOTIFY entries to `summary`.
fn maintain_feed(f: &Feed, targets: &[&Target], keys: Option<&[String]>, summary: &mut Vec<Entry>) {
    if targets.is_empty() {
        return;
    }
    if let Some(keys) = keys {
        if keys.is_empty() {
            return;
        }
        if f.roles.iter().any(|r| matches!(r, Role::Relation { .. })) {
            lock_referenced_contacts(&f.reg, keys);
        } else {
            lock_contacts(&f.reg, keys);
        }
    }
    let rows = keys.map_or(Rows::All, Rows::Keys);
    summary.extend(by_level(targets, &f.reg, rows).1);
}

/// Maintains what rows of a relation ask for (`relevant`): the targets that
/// inserted rows decide (`Relevant::decided`) as flips, for contacts locked
/// under their keys, without a query; the other targets by recompute. A
/// decided target is recomputed too if one of its contacts was not locked
/// that way (gone, given another key, or locked by the statement).
fn maintain_relation(f: &Feed, r: Relevant, generation: u64, summary: &mut Vec<Entry>) {
    if r.keys.is_empty() || r.targets.is_empty() {
        return;
    }
    let locked = lock_referenced_contacts(&f.reg, &r.keys);
    let mut settled: Vec<usize> = r.decided.iter().map(|&(i, _)| i).collect();
    settled.dedup();
    // Flips one by one cost more than the set-based statement for many.
    if r.keys.len() > FEW_CONTACTS {
        settled.clear();
    }
    settled.retain(|&i| r.decided.iter().all(|(j, key)| *j != i || locked.binary_search(key).is_ok()));
    let flips: Vec<Flip> = r
        .decided
        .iter()
        .filter(|(i, _)| settled.contains(i))
        .map(|(i, key)| Flip {
            segment: f.targets[*i].id,
            key: key.clone(),
            enter: f.decided[*i] == Some(true),
            generation: Some(generation),
        })
        .collect();
    if !flips.is_empty() {
        let targets: Vec<&Target> = settled.iter().map(|&i| &f.targets[i]).collect();
        flips::apply(f, &targets, &flips.iter().collect::<Vec<_>>(), summary);
    }
    let rest: Vec<&Target> =
        r.targets.into_iter().filter(|t| !settled.iter().any(|&i| f.targets[i].id == t.id)).collect();
    if !rest.is_empty() {
        pinned_search_path(|| summary.extend(by_level(&rest, &f.reg, Rows::Keys(&r.keys)).1));
    }
}

/// The UPDATE statement trigger: applies what the row trigger collected.
fn on_update(f: &Feed, pending: &[Pending], summary: &mut Vec<Entry>) {
    let mut flips = vec![];
    let mut keys = vec![];
    let mut repointed = vec![];
    let mut all = false;
    // The targets asked for, for all the keys together: a recompute of a
    // contact for a segment it cannot have changed in changes nothing.
    let mut wanted = vec![false; f.targets.len()];
    let mut via: HashMap<(&str, &str), Vec<String>> = HashMap::new();
    for p in pending.iter().filter(|p| p.source == f.reg.relid && p.tenant == f.tenant) {
        match &p.touch {
            Touch::Flip(flip) => flips.push(flip),
            Touch::Contact { key, targets, repointed: r } => {
                keys.push(key.clone());
                if *r {
                    repointed.push(key.clone());
                }
                match targets {
                    None => all = true,
                    Some(t) => t.iter().for_each(|&i| wanted[i] = true),
                }
            }
            Touch::Lookup { via_column, target_type, value } => {
                via.entry((via_column, target_type)).or_default().push(value.clone())
            }
        }
    }
    if !flips.is_empty() {
        flips::apply(f, &f.decided(), &flips, summary);
    }
    if keys.is_empty() && via.is_empty() {
        return;
    }
    pinned_search_path(|| {
        for ((via_column, target_type), values) in via {
            keys.extend(contacts_via(&f.reg, via_column, target_type, &values));
            all = true;
        }
        keys.sort();
        keys.dedup();
        if !repointed.is_empty() {
            share_lookups(&f.reg, &f.lookups, Rows::Keys(&repointed));
        }
        let targets: Vec<&Target> = f.targets.iter().zip(&wanted).filter(|&(_, &w)| all || w).map(|(t, _)| t).collect();
        maintain_feed(f, &targets, Some(&keys), summary);
    });
}

/// The statement triggers behind every registered table.
fn on_statement(trigger: &Trigger<'_>) {
    let table = trigger.relid();
    let op = trigger.op();
    let pending = if op == Op::Update {
        // Nothing collected: no read column changed, or no segment flipped.
        let Some(pending) = UPDATED.with(|u| u.borrow_mut().remove(&table)) else { return };
        pending
    } else {
        vec![]
    };
    // Before the feeds, as in `on_row_update`.
    let generation = cache::generation();
    let feeds = feeds(trigger);
    // Row-local flips run no SQL: the search_path is pinned (which costs
    // more than the flips) only around what does.
    as_owner(|| {
        for f in feeds.iter().filter(|f| f.maintains()) {
            let mut summary = vec![];
            match (op, &f.parts) {
                (Op::Update, None) => on_update(f, &pending, &mut summary),
                (Op::Update, Some(_)) => on_update_tenants(trigger, f, &pending, &mut summary),
                (_, None) => on_write(trigger, f, op, generation, &mut summary),
                (_, Some(_)) => on_write_tenants(trigger, f, op, generation, &mut summary),
            }
            if !summary.is_empty() {
                pinned_search_path(|| notify(f.reg.relid, summary));
            }
        }
    });
}

/// The statement triggers of INSERT, DELETE and TRUNCATE; `generation`: the
/// catalog generation the feed `f` was read under. What runs SQL runs with
/// the search_path pinned.
fn on_write(trigger: &Trigger<'_>, f: &Feed, op: Op, generation: u64, summary: &mut Vec<Entry>) {
    let all: Vec<&Target> = f.targets.iter().collect();
    match op {
        // A truncated source left every segment already
        // (segments.forget_contacts); a truncated relation or lookup
        // changes any contact.
        Op::Truncate if f.roles.iter().any(|r| !matches!(r, Role::Source)) => {
            pinned_search_path(|| maintain_feed(f, &all, None, summary))
        }
        Op::Truncate => {}
        // New rows of the source: straight from the transition table.
        Op::Insert if matches!(f.roles.as_slice(), [Role::Source]) => {
            admit::new_contacts(trigger, f, generation, summary);
            if !f.decides_all() {
                announce_inserted(trigger, &f.reg.key, f.attnums[0]);
                admit_others(f, Rows::New(trigger), summary);
            }
        }
        // Rows of a relation: only their contacts, for the segments whose
        // filters they pass.
        Op::Insert | Op::Delete if f.relevance.is_some() => {
            maintain_relation(f, relevant(trigger, f, op == Op::Insert), generation, summary)
        }
        _ => pinned_search_path(|| {
            let mut keys = touched_by_write(trigger, f, op == Op::Insert);
            keys.sort();
            keys.dedup();
            maintain_feed(f, &all, Some(&keys), summary);
        }),
    }
}

/// New contacts of the source (`rows`: by key, or the INSERT's transition
/// table) into the segments of feed `f` decided by SQL
/// (`admit::new_contacts` decided the others). Segments that read other
/// rows than the contact's own may be read by relation rows written for
/// the new keys meanwhile: the caller announced the keys
/// (`announce_inserted`).
fn admit_others(f: &Feed, rows: Rows, summary: &mut Vec<Entry>) {
    pinned_search_path(|| {
        share_lookups(&f.reg, &f.lookups, rows);
        summary.extend(by_level(&f.others(), &f.reg, rows).1)
    })
}

/// The UPDATE statement trigger of a table of a source with tenants: what
/// the row trigger decided per tenant goes to that tenant's part; contacts
/// reached through other tables are recomputed in their tenants' parts.
fn on_update_tenants(trigger: &Trigger<'_>, f: &Feed, pending: &[Pending], summary: &mut Vec<Entry>) {
    let mine = |p: &&Pending| p.source == f.reg.relid;
    let mut tenants: Vec<&String> = pending.iter().filter(mine).filter_map(|p| p.tenant.as_ref()).collect();
    tenants.sort();
    tenants.dedup();
    for tenant in tenants {
        on_update(&f.part(trigger, tenant), pending, summary);
    }
    let mut keys = vec![];
    let mut via: HashMap<(&str, &str), Vec<String>> = HashMap::new();
    for p in pending.iter().filter(mine).filter(|p| p.tenant.is_none()) {
        match &p.touch {
            Touch::Contact { key, .. } => keys.push(key.clone()),
            Touch::Lookup { via_column, target_type, value } => {
                via.entry((via_column, target_type)).or_default().push(value.clone())
            }
            Touch::Flip(_) => {}
        }
    }
    pinned_search_path(|| {
        for ((via_column, target_type), values) in via {
            keys.extend(contacts_via(&f.reg, via_column, target_type, &values));
        }
        maintain_contacts(trigger, f, keys, summary);
    });
}

/// The INSERT, DELETE and TRUNCATE statement triggers of a table of a source
/// with tenants: new contacts by their tenants' parts, other rows by the
/// tenants of the contacts they reach.
fn on_write_tenants(trigger: &Trigger<'_>, f: &Feed, op: Op, generation: u64, summary: &mut Vec<Entry>) {
    let source_only = matches!(f.roles.as_slice(), [Role::Source]);
    match op {
        Op::Truncate if !source_only => pinned_search_path(|| {
            for tenant in tenants_with_segments(f.reg.relid) {
                let part = f.part(trigger, &tenant);
                maintain_feed(&part, &part.targets.iter().collect::<Vec<_>>(), None, summary);
            }
        }),
        Op::Truncate => {}
        // New contacts: the segments decided in process in one pass for all
        // tenants; the others by their tenants' parts. Of a few tenants,
        // from the transition table, once per tenant; of many, by key (each
        // tenant's segments read only its contacts, through the key's
        // index), as a pass over the whole transition table per tenant
        // would cost the number of tenants times the rows.
        Op::Insert if source_only => {
            let rest = admit::new_contacts(trigger, f, generation, summary);
            if rest.is_empty() {
                return;
            }
            announce_inserted(trigger, &f.reg.key, f.attnums[0]);
            let few = rest.len() <= FEW_TENANTS;
            for (part, keys) in &rest {
                admit_others(part, if few { Rows::New(trigger) } else { Rows::Keys(keys) }, summary);
            }
        }
        // Deleted contacts left every segment (segments.forget_contacts).
        Op::Delete if source_only => on_write(trigger, f, op, generation, summary),
        _ => pinned_search_path(|| maintain_contacts(trigger, f, touched_by_write(trigger, f, op == Op::Insert), summary)),
    }
}

/// The contacts the rows an INSERT (`insert`) or DELETE wrote reach, by
/// every role of the table but a deleted contact's own (it left every
/// segment already: segments.forget_contacts); new lookup keys announced
/// first (`announce_inserted`).
fn touched_by_write(trigger: &Trigger<'_>, f: &Feed, insert: bool) -> Vec<String> {
    if insert {
        for (role, &attnum) in f.roles.iter().zip(&f.attnums) {
            if let Role::Lookup { target_key, .. } = role {
                announce_inserted(trigger, target_key, attnum);
            }
        }
    }
    let mut keys = vec![];
    for role in &f.roles {
        if matches!(role, Role::Source) && !insert {
            if backend::repeatable_read() {
                forget_committed_since(trigger, &f.reg);
            }
            continue;
        }
        keys.extend(touched(trigger, &f.reg, role, if insert { "new_rows" } else { "old_rows" }));
    }
    keys
}

/// Up to this many tenants, the contacts one INSERT adds are maintained from
/// its transition table, tenant by tenant (`on_write_tenants`).
const FEW_TENANTS: usize = 16;

/// Recomputes contacts `keys` of a source with tenants, each for the
/// segments of its tenant. The contacts are locked before their tenants
/// are read, under the latest snapshot: a contact moving to another tenant
/// meanwhile is recomputed in the tenant it ends in.
fn maintain_contacts(trigger: &Trigger<'_>, f: &Feed, mut keys: Vec<String>, summary: &mut Vec<Entry>) {
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return;
    }
    lock_referenced_contacts(&f.reg, &keys);
    let column = ident(f.reg.tenant_column.as_deref().unwrap_or_default());
    let sql = format!(
        "SELECT {column}::pg_catalog.text, pg_catalog.array_agg(s.{}::pg_catalog.text ORDER BY s.{})
           FROM {} s WHERE {column} IS NOT NULL{} GROUP BY 1 ORDER BY 1",
        ident(&f.reg.key),
        ident(&f.reg.key),
        f.reg.source,
        f.reg.and_key_in_param("s"),
    );
    let by_tenant: Vec<(String, Vec<String>)> = under_latest_snapshot(|| {
        spi::rows(&sql, &[keys.clone().into()], |r| {
            (spi::column::<String>(r, 1).unwrap_or_default(), spi::column::<Vec<String>>(r, 2).unwrap_or_default())
        })
    });
    // Locked above: recomputed without locking them again (`maintain_feed`).
    for (tenant, keys) in by_tenant {
        let part = f.part(trigger, &tenant);
        summary.extend(by_level(&part.targets.iter().collect::<Vec<_>>(), &part.reg, Rows::Keys(&keys)).1);
    }
}

/// The tenants that have segments of `source`.
fn tenants_with_segments(source: pg_sys::Oid) -> Vec<String> {
    spi::get::<Vec<String>>(
        "SELECT COALESCE(pg_catalog.array_agg(DISTINCT tenant), '{}') FROM segments.segment_def
          WHERE source OPERATOR(pg_catalog.=) $1 AND tenant IS NOT NULL",
        &[source.into()],
    )
    .unwrap_or_default()
}
