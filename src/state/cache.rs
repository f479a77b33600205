//! Backend-local caches and their invalidation: one place decides when
//! anything cached about the segment catalog is stale.
//!
//! Every API function that changes the catalog calls `definitions_changed`,
//! which sends a relcache invalidation of `segments.segment_def` at commit;
//! each backend, on receiving it, moves the catalog generation on, and every
//! `Memo` made under an older generation is emptied on its next use. A
//! change of a role or role membership does the same for what depends on
//! who is asking. What lives only for a transaction or for one table is
//! forgotten through `Hooks`, set from `_PG_init`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::Hash;
use std::rc::Rc;
use std::sync::OnceLock;

use pgrx::pg_sys;

use crate::pg::{backend, spi};

thread_local! {
    /// The oid of segments.segment_def, whose relcache invalidation says
    /// "the catalog changed" (INVALID: not looked up yet).
    static CATALOG_OID: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::Oid::INVALID) };
    /// How many invalidations of the segment catalog this backend processed.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    /// How many changes of roles and role memberships it processed.
    static ROLES: Cell<u64> = const { Cell::new(0) };
}

/// The catalog generation: it changes whenever this backend learns that the
/// segment catalog changed, so what was decided from the catalog under one
/// generation still holds while it is current (`liveness::lock_live`).
pub fn generation() -> u64 {
    GENERATION.with(Cell::get)
}

/// The oid of segments.segment_def.
pub fn segment_def_oid() -> pg_sys::Oid {
    let known = CATALOG_OID.with(Cell::get);
    if known != pg_sys::Oid::INVALID {
        return known;
    }
    let oid = spi::get::<pg_sys::Oid>("SELECT 'segments.segment_def'::pg_catalog.regclass::pg_catalog.oid", &[])
        .unwrap_or(pg_sys::Oid::INVALID);
    CATALOG_OID.with(|c| c.set(oid));
    oid
}

/// Tells every backend (this one at its next command) that the segment
/// catalog changed.
pub fn definitions_changed() {
    backend::invalidate_relation(segment_def_oid());
}

/// A backend-local map whose entries hold while the catalog generation and
/// the roles are those they were made under.
pub struct Memo<K, V> {
    made_under: Cell<(u64, u64)>,
    entries: RefCell<HashMap<K, Rc<V>>>,
}

impl<K: Hash + Eq, V> Memo<K, V> {
    pub fn new() -> Self {
        Memo { made_under: Cell::new((0, 0)), entries: RefCell::new(HashMap::new()) }
    }

    fn current(&self) {
        let now = (generation(), ROLES.with(Cell::get));
        if self.made_under.replace(now) != now {
            self.entries.borrow_mut().clear();
        }
    }

    /// The entry under `key`, made by `make` if missing or stale.
    pub fn get_or(&self, key: K, make: impl FnOnce() -> V) -> Rc<V> {
        // First, so that an invalidation of the catalog is recognised.
        segment_def_oid();
        self.current();
        if let Some(v) = self.entries.borrow().get(&key).cloned() {
            return v;
        }
        let v = Rc::new(make());
        // `make` may have processed invalidations: what it read may be
        // stale already, and then it is not kept.
        let now = (generation(), ROLES.with(Cell::get));
        if self.made_under.get() == now {
            self.entries.borrow_mut().insert(key, v.clone());
        }
        v
    }

    pub fn forget(&self, key: &K) {
        self.entries.borrow_mut().remove(key);
    }
}

impl<K: Hash + Eq, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// What is forgotten other than through the catalog generation.
pub struct Hooks {
    /// A table's relcache entry was invalidated (its row type may have changed).
    pub table: fn(pg_sys::Oid),
    /// A subtransaction aborted.
    pub subtransaction_abort: fn(pg_sys::SubTransactionId),
    /// The transaction aborted (true) or was prepared (false).
    pub transaction_end: fn(bool),
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

/// Registers the invalidation callbacks, from `_PG_init`.
pub fn install(hooks: Hooks) {
    let _ = HOOKS.set(hooks);
    backend::register_callbacks(backend::Callbacks {
        relation: on_relation,
        roles: || ROLES.with(|r| r.set(r.get() + 1)),
        subtransaction_abort: |subxact| {
            if let Some(h) = HOOKS.get() {
                (h.subtransaction_abort)(subxact)
            }
        },
        transaction_end: |abort| {
            if let Some(h) = HOOKS.get() {
                (h.transaction_end)(abort)
            }
        },
    });
}

/// segments.segment_def invalidated (or everything is): the catalog
/// changed; another table: what is kept about that table.
fn on_relation(relid: pg_sys::Oid) {
    let catalog = CATALOG_OID.with(Cell::get);
    if relid == pg_sys::Oid::INVALID || (relid == catalog && catalog != pg_sys::Oid::INVALID) {
        GENERATION.with(|g| g.set(g.get() + 1));
        // The table may have been dropped with the extension: looked up
        // again next time.
        CATALOG_OID.with(|c| c.set(pg_sys::Oid::INVALID));
    }
    if let Some(h) = HOOKS.get() {
        (h.table)(relid);
    }
}
