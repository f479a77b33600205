//! Feeds: what the trigger of one table works with, per source the table
//! feeds (its roles there, the active segments to maintain, the row filters
//! compiled for in-process decisions), built once per table and catalog
//! generation.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::prelude::*;
use segments_lang::codegen::qualified;
use segments_lang::model::Lookup;
use segments_lang::Compiled;

use super::definitions::{referenced, targets_of, tenant_targets, Target};
use super::install::{update_trigger_columns, watched_columns};
use super::writers::check_definitions;
use crate::pg::rowfilter::RowFilters;
use crate::pg::spi;
use crate::pg::trigger::Trigger;
use crate::state::cache::Memo;
use crate::state::registry::{self, Registered};
use crate::state::privilege::{as_owner, pinned_search_path, regclass_text};

/// What the trigger of one table needs for one source it feeds: the table
/// may play several roles for that source (registered as two relations, or as
/// a relation and a lookup), but the segments to recompute are the same, so
/// each statement recomputes them once.
pub struct Feed {
    pub reg: Registered,
    pub roles: Vec<Role>,
    /// Active segments to recompute, dependencies first.
    pub targets: Vec<Target>,
    /// When the table is the source and nothing else: the targets whose
    /// predicates read only the contact's row (indices into `targets`), and
    /// those predicates compiled for in-process evaluation.
    pub local: Vec<usize>,
    /// For a tenant's part, compiled without the tenant's condition and
    /// shared by the parts whose row-local segments have the same
    /// definitions (`Parts::filters`): the trigger evaluates them only on
    /// rows of the part's tenant.
    pub filters: Option<Rc<RowFilters>>,
    /// Likewise, the targets whose predicates read only the contact's row
    /// and the clock (indices into `targets`), and their predicates: a write
    /// sets the contact's membership to what its new row gives now, as a
    /// recompute by SQL would, without evaluating the old row (whose
    /// answer may have been changed by time since it was written).
    pub clocked: Vec<usize>,
    pub clocked_filters: Option<Rc<RowFilters>>,
    /// Per role, the attribute number of its column (`Role::column`) in the
    /// table's rows: for the source, the key's.
    pub attnums: Vec<i32>,
    /// The attribute numbers of the columns whose change may matter to
    /// this source (those the UPDATE triggers name, or `watched_columns`):
    /// an UPDATE that changes none is ignored.
    pub watched: Vec<i32>,
    /// When the table is one relation of the source and nothing else: per
    /// target, whether a row of it can change the target
    /// (`codegen::relevance`), compiled for in-process evaluation.
    pub relevance: Option<RowFilters>,
    /// With `relevance`, when a target depends on time: whether a row can
    /// have changed a target at some moment since its last sweep
    /// (`codegen::relevance_lately`), for deleted rows and old images.
    pub relevance_lately: Option<RowFilters>,
    /// With `relevance`: per target, what a row inserted that can change it
    /// makes of the row's contact, when that alone decides it
    /// (`codegen::insert_decides`).
    pub decided: Vec<Option<bool>>,
    /// When the table is the source: the lookups the targets read, and the
    /// attribute numbers of their `via` columns (a contact's pointers).
    pub lookups: Vec<Lookup>,
    pub pointers: Vec<i32>,
    /// When the table is the source: per target, the attribute numbers of
    /// the source's columns it reads (an UPDATE that changes none of them
    /// cannot change it).
    pub reads: Vec<Vec<i32>>,
    /// The tenant whose segments `targets` are (a part of a source with
    /// tenants), None for a source without.
    pub tenant: Option<String>,
    /// For a source with tenants: its feed holds no targets itself; each
    /// tenant's part is built when a write first touches that tenant
    /// (`part`), so a write evaluates, and a backend compiles, only the
    /// segments of the tenants it touches.
    pub parts: Option<Parts>,
}

/// The parts of a feed of a source with tenants, by tenant.
pub struct Parts {
    /// The attribute number of the tenant column in the table's rows, when
    /// the table is the source (0 otherwise: a row of another table says
    /// nothing of its contact's tenant).
    pub tenant_attnum: i32,
    /// Whether a part's targets are `tenant_targets`: for the source's own
    /// trigger when no segment of the source is referenced by another.
    direct: bool,
    built: RefCell<HashMap<String, Rc<Feed>>>,
    /// Row filters by the predicates they evaluate: tenants whose
    /// row-local segments have the same definitions (the segments an
    /// application creates for every account) share one compilation, so
    /// that a part's build is a lookup for them.
    filters: RefCell<HashMap<Vec<String>, Rc<RowFilters>>>,
}

impl Feed {
    /// Whether writes of the table may change a segment of this source.
    pub fn maintains(&self) -> bool {
        if self.parts.is_some() { !self.watched.is_empty() } else { !self.targets.is_empty() }
    }

    /// Tenant `tenant`'s part of a feed of a source with tenants, built
    /// on first use (the trigger's `trigger`) for this catalog generation.
    pub fn part(&self, trigger: &Trigger<'_>, tenant: &str) -> Rc<Feed> {
        let Some(parts) = &self.parts else { unreachable!("a source with tenants") };
        if let Some(p) = parts.built.borrow().get(tenant) {
            return p.clone();
        }
        let part = Rc::new(trigger_work(|| {
            let targets = if parts.direct {
                tenant_targets(self.reg.relid, tenant)
            } else {
                targets_of(self.reg.relid, trigger.relid(), Some(tenant))
            };
            let mut part = self.skeleton(targets);
            part.tenant = Some(tenant.to_string());
            complete(&mut part, trigger, Some(&parts.filters));
            check_definitions(&[self.reg.relid]);
            part
        }));
        parts.built.borrow_mut().insert(tenant.to_string(), part.clone());
        part
    }

    /// A feed of the same source and roles with `targets`, nothing compiled.
    fn skeleton(&self, targets: Vec<Target>) -> Feed {
        let mut f = Feed::empty(self.reg.clone(), self.roles.clone(), targets);
        f.attnums = self.attnums.clone();
        f.watched = self.watched.clone();
        f
    }

    /// A feed of `reg` in `roles` with `targets`, nothing else known yet.
    fn empty(reg: Registered, roles: Vec<Role>, targets: Vec<Target>) -> Feed {
        Feed {
            targets,
            roles,
            reg,
            local: vec![],
            filters: None,
            clocked: vec![],
            clocked_filters: None,
            attnums: vec![],
            watched: vec![],
            relevance: None,
            relevance_lately: None,
            decided: vec![],
            lookups: vec![],
            pointers: vec![],
            reads: vec![],
            tenant: None,
            parts: None,
        }
    }

    /// What decides whether a row can change a target: for a row written
    /// (`new`), whether it can now; for a row taken away, whether it can
    /// have since the last sweep.
    pub fn relevance(&self, new: bool) -> Option<&RowFilters> {
        if new { self.relevance.as_ref() } else { self.relevance_lately.as_ref().or(self.relevance.as_ref()) }
    }

    /// Whether target `i` is decided in process (`local` or `clocked`).
    pub fn in_process(&self, i: usize) -> bool {
        // Both in target order (`complete`); asked for every target of
        // every updated row.
        self.local.binary_search(&i).is_ok() || self.clocked.binary_search(&i).is_ok()
    }

    /// Whether every target is decided in process.
    pub fn decides_all(&self) -> bool {
        self.local.len() + self.clocked.len() == self.targets.len()
    }

    /// The targets decided in process.
    pub fn decided(&self) -> Vec<&Target> {
        self.targets.iter().enumerate().filter(|&(i, _)| self.in_process(i)).map(|(_, t)| t).collect()
    }

    /// The targets decided by SQL.
    pub fn others(&self) -> Vec<&Target> {
        self.targets.iter().enumerate().filter(|&(i, _)| !self.in_process(i)).map(|(_, t)| t).collect()
    }
}

thread_local! {
    /// Per table: the feeds its trigger works with. Built on first use and
    /// dropped whenever the segment catalog or the table changes
    /// (`state::cache`, `forget`).
    static FEEDS: Memo<pg_sys::Oid, Vec<Feed>> = Memo::new();
}

/// Forgets the feeds of `table` (its row type may have changed).
pub fn forget(table: pg_sys::Oid) {
    FEEDS.with(|f| f.forget(&table));
}

/// What the trigger does with SQL runs as the extension owner with a
/// pinned search_path (segments.maintain() has no SET clause: see
/// `pinned_search_path`).
pub fn trigger_work<R>(f: impl FnOnce() -> R) -> R {
    as_owner(|| pinned_search_path(f))
}

/// The feeds of the trigger's table: from the cache without running
/// anything, else read from the catalog.
pub fn feeds(trigger: &Trigger<'_>) -> Rc<Vec<Feed>> {
    FEEDS.with(|f| f.get_or(trigger.relid(), || trigger_work(|| build(trigger))))
}

fn build(trigger: &Trigger<'_>) -> Vec<Feed> {
    let (table, row_type) = (trigger.relid(), trigger.row_type());
    let attnum = |name: &str| row_type.attnum(name).map_or(0, i32::from);
    let mut feeds: Vec<Feed> = vec![];
    for (source, role) in roles(table) {
        if let Some(f) = feeds.iter_mut().find(|f| f.reg.relid == source) {
            f.roles.push(role);
        } else if let Some(reg) = registry::registered(source) {
            let tenants = reg.tenant_column.as_ref().map(|column| Parts {
                tenant_attnum: if source == table { attnum(column) } else { 0 },
                direct: source == table && !referenced(source),
                built: Default::default(),
                filters: Default::default(),
            });
            let targets = if tenants.is_some() { vec![] } else { targets_of(source, table, None) };
            let mut f = Feed::empty(reg, vec![role], targets);
            f.parts = tenants;
            feeds.push(f);
        }
    }
    // The UPDATE triggers name the columns that matter to any source
    // (`sync_update_trigger`), a superset of each source's: read from the
    // trigger, not aggregated from every segment's reads, which a new
    // connection's first write paid for in proportion to the segments.
    let named = update_trigger_columns(table).filter(|c| !c.is_empty());
    for f in feeds.iter_mut() {
        let watched = named.clone().unwrap_or_else(|| watched_columns(table, Some(f.reg.relid)));
        f.attnums = f.roles.iter().map(|r| attnum(r.column(&f.reg))).collect();
        f.watched = watched.iter().map(|c| attnum(c)).filter(|&n| n > 0).collect();
        if f.parts.is_none() {
            complete(f, trigger, None);
        }
    }
    // What was read above was read under the transaction's snapshot.
    check_definitions(&feeds.iter().map(|f| f.reg.relid).collect::<Vec<_>>());
    feeds
}

/// Compiles what the trigger decides in process for the targets of `f`:
/// the relevance of a relation's rows, the lookups a contact points at, the
/// row filters of the segments that read only the contact's row (for a
/// tenant's part, from `shared` if other tenants have the same).
fn complete(f: &mut Feed, trigger: &Trigger<'_>, shared: Option<&RefCell<HashMap<Vec<String>, Rc<RowFilters>>>>) {
    let (table, row_type) = (trigger.relid(), trigger.row_type());
    let attnum = |name: &str| row_type.attnum(name).map_or(0, i32::from);
    if let [Role::Relation { name, .. }] = f.roles.as_slice() {
        let compiled: Vec<Rc<Compiled>> = f.targets.iter().map(|t| t.compiled(&f.reg)).collect();
        let sql: Vec<String> = compiled.iter().map(|c| c.relevance(name)).collect();
        f.decided = compiled.iter().map(|c| c.insert_decides(name)).collect();
        f.relevance = Some(RowFilters::new(&regclass_text(table), row_type, &sql));
        if compiled.iter().any(|c| c.time_relative) {
            let lately: Vec<String> = compiled.iter().map(|c| c.relevance_lately(name)).collect();
            f.relevance_lately = Some(RowFilters::new(&regclass_text(table), row_type, &lately));
        }
    }
    // A tenant's part: its definitions as every tenant's compile, the
    // predicate without the tenant being all it evaluates.
    let compiled = |t: &Target, reg: &Registered| if shared.is_some() { t.compiled_for_part(reg) } else { t.compiled(reg) };
    if f.roles.iter().any(|r| matches!(r, Role::Source)) {
        for t in &f.targets {
            let c = compiled(t, &f.reg);
            let own = c.reads.iter().filter(|(schema, table, _)| qualified(schema, table) == f.reg.source);
            f.reads.push(own.map(|(_, _, column)| attnum(column)).collect());
            for l in &c.lookups {
                if !f.lookups.iter().any(|m| m.name == l.name) {
                    f.pointers.push(attnum(&l.via_column));
                    f.lookups.push(l.clone());
                }
            }
        }
    }
    if matches!(f.roles.as_slice(), [Role::Source]) {
        let (mut predicates, mut clocked) = (vec![], vec![]);
        for (i, t) in f.targets.iter().enumerate() {
            let c = compiled(t, &f.reg);
            let p = if shared.is_some() { c.predicate_any_tenant.clone() } else { c.predicate.clone() };
            if c.local() {
                f.local.push(i);
                predicates.push(p);
            } else if c.row_local {
                f.clocked.push(i);
                clocked.push(p);
            }
        }
        let filters = |predicates: Vec<String>| {
            let compile = |p: &[String]| Rc::new(RowFilters::new(&f.reg.source, row_type, p));
            (!predicates.is_empty()).then(|| match shared {
                Some(m) => m.borrow_mut().entry(predicates).or_insert_with_key(|p| compile(p)).clone(),
                None => compile(&predicates),
            })
        };
        (f.filters, f.clocked_filters) = (filters(predicates), filters(clocked));
    }
}

/// How a table relates to a source.
#[derive(Clone)]
pub enum Role {
    Source,
    /// `name`: the relation's registered name, as definitions call it.
    Relation { contact_column: String, name: String },
    /// `target_type`: the target key's type, schema-qualified: keys are
    /// compared as values of it, never as text (`1.0` and `1` are one
    /// numeric key).
    Lookup { via_column: String, target_key: String, target_type: String },
}

fn roles(table: pg_sys::Oid) -> Vec<(pg_sys::Oid, Role)> {
    spi::rows(
                "SELECT relid::pg_catalog.oid, 'source', NULL::text, NULL::text, NULL::text FROM segments.source
                  WHERE relid OPERATOR(pg_catalog.=) $1
                 UNION ALL
                 SELECT source::pg_catalog.oid, 'relation', contact_column::text, name, NULL::text FROM segments.relation
                  WHERE relation OPERATOR(pg_catalog.=) $1
                 UNION ALL
                 SELECT l.source::pg_catalog.oid, 'lookup', l.via_column::text, l.target_key::text,
                        pg_catalog.format('%I.%I', n.nspname, t.typname)
                   FROM segments.lookup l
                   JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) l.target
                                                 AND a.attname OPERATOR(pg_catalog.=) l.target_key
                   JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
                   JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace
                  WHERE l.target OPERATOR(pg_catalog.=) $1",
                &[table.into()],
                |r| {
                    let source: pg_sys::Oid = spi::column(r, 1).unwrap_or(pg_sys::Oid::INVALID);
                    let kind: String = spi::column(r, 2).unwrap_or_default();
                    let a: String = spi::column(r, 3).unwrap_or_default();
                    let b: String = spi::column(r, 4).unwrap_or_default();
                    let role = match kind.as_str() {
                        "source" => Role::Source,
                        "relation" => Role::Relation { contact_column: a, name: b },
                        _ => Role::Lookup { via_column: a, target_key: b, target_type: spi::column(r, 5).unwrap_or_default() },
                    };
                    (source, role)
                },
            )
}

impl Role {
    /// The column of the table that says which contact (or lookup row) a
    /// row belongs to.
    pub fn column<'a>(&'a self, reg: &'a Registered) -> &'a str {
        match self {
            Role::Source => &reg.key,
            Role::Relation { contact_column, .. } => contact_column,
            Role::Lookup { target_key, .. } => target_key,
        }
    }
}

