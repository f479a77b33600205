//! The backend's transaction, identity, locks and cache invalidation.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::sync::OnceLock;

/// Whether the transaction runs under REPEATABLE READ or SERIALIZABLE.
pub fn repeatable_read() -> bool {
    // SAFETY: reads a backend-local setting.
    unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 }
}

/// The role whose privileges apply now.
pub fn current_user() -> pg_sys::Oid {
    // SAFETY: reads the current user id.
    unsafe { pg_sys::GetUserId() }
}

/// The current subtransaction.
pub fn subtransaction() -> pg_sys::SubTransactionId {
    // SAFETY: plain call, inside a transaction.
    unsafe { pg_sys::GetCurrentSubTransactionId() }
}

/// The database this backend is connected to.
pub fn database() -> pg_sys::Oid {
    // SAFETY: set once at connection, read only.
    unsafe { pg_sys::MyDatabaseId }
}

/// The transaction's start time (what `now()` returns).
pub fn transaction_start() -> pg_sys::TimestampTz {
    // SAFETY: plain call, inside a transaction.
    unsafe { pg_sys::GetCurrentTransactionStartTimestamp() }
}

/// Forgets the statistics and activity snapshot the transaction took
/// (`pg_stat_clear_snapshot()`), so that the next read of
/// `pg_stat_activity` sees the backends as they are now.
pub fn clear_activity_snapshot() {
    // SAFETY: frees only the snapshot, which the next read takes again.
    unsafe { pg_sys::pgstat_clear_snapshot() };
}

/// Locks table `relid` in `mode` until the transaction ends.
pub fn lock_table(relid: pg_sys::Oid, mode: u32) {
    // SAFETY: a lock on an existing relation, released at transaction end.
    unsafe { pg_sys::LockRelationOid(relid, mode as i32) };
}

/// Takes the heavyweight lock on object `id` of catalog table `classid`
/// in `mode`, held until the transaction ends; `pg_locks` shows it as a
/// lock on an object. Ids above 2^48 share a tag with others: more
/// waiting, never less.
pub fn lock_object(classid: pg_sys::Oid, id: i64, mode: u32) {
    // SAFETY: a lock tag built as SET_LOCKTAG_OBJECT builds it.
    unsafe {
        let mut tag = pg_sys::LOCKTAG {
            locktag_field1: pg_sys::MyDatabaseId.to_u32(),
            locktag_field2: classid.to_u32(),
            locktag_field3: id as u32,
            locktag_field4: (id >> 32) as u16,
            locktag_type: pg_sys::LockTagType::LOCKTAG_OBJECT as u8,
            locktag_lockmethodid: pg_sys::DEFAULT_LOCKMETHOD as u8,
        };
        pg_sys::LockAcquire(&mut tag, mode as i32, false, false);
    }
}

/// Takes, until the transaction ends, the lock on bucket `bucket` of the
/// keys of table `relid` (`heap::key_buckets`): shared or exclusive. An
/// advisory lock to `pg_locks` (classid: the table, objid: the bucket,
/// objsubid 21319), a tag no SQL-level advisory lock function builds.
pub fn lock_key_bucket(relid: pg_sys::Oid, bucket: u32, exclusive: bool) {
    let mode = if exclusive { pg_sys::ExclusiveLock } else { pg_sys::ShareLock };
    // SAFETY: a lock tag built as SET_LOCKTAG_ADVISORY builds it.
    unsafe {
        let mut tag = pg_sys::LOCKTAG {
            locktag_field1: pg_sys::MyDatabaseId.to_u32(),
            locktag_field2: relid.to_u32(),
            locktag_field3: bucket,
            locktag_field4: KEY_BUCKET_TAG,
            locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
            locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
        };
        pg_sys::LockAcquire(&mut tag, mode as i32, false, false);
    }
}

/// The fourth field of a key bucket's lock tag ("SG"); the SQL advisory
/// lock functions use 1 and 2.
const KEY_BUCKET_TAG: u16 = 0x5347;

/// Processes the invalidation messages other backends committed.
pub fn accept_invalidations() {
    // SAFETY: plain call, inside a transaction.
    unsafe { pg_sys::AcceptInvalidationMessages() };
}

/// Queues a relcache invalidation of `relid`, sent to every backend at commit.
pub fn invalidate_relation(relid: pg_sys::Oid) {
    // SAFETY: queues an invalidation message for an existing relation.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
}

/// The oid of relation `schema.name`, INVALID if there is none.
pub fn relation_oid(schema: &std::ffi::CStr, name: &std::ffi::CStr) -> pg_sys::Oid {
    // SAFETY: catalog lookups by name, inside a transaction.
    unsafe { pg_sys::get_relname_relid(name.as_ptr(), pg_sys::get_namespace_oid(schema.as_ptr(), false)) }
}

/// Whether the library is being loaded by the postmaster
/// (`shared_preload_libraries`).
pub fn preloading() -> bool {
    // SAFETY: reading a backend global set by the postmaster.
    unsafe { pg_sys::process_shared_preload_libraries_in_progress }
}

/// Rereads the configuration files, as a background worker does on SIGHUP.
pub fn reload_configuration() {
    // SAFETY: the documented way for a worker to reload its settings.
    unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
}

/// What the backend's cache callbacks call (`register_callbacks`).
pub struct Callbacks {
    /// A relation's relcache entry was invalidated (INVALID: all of them).
    pub relation: fn(pg_sys::Oid),
    /// A role or role membership changed.
    pub roles: fn(),
    /// A subtransaction aborted.
    pub subtransaction_abort: fn(pg_sys::SubTransactionId),
    /// The transaction aborted (true) or was prepared (false).
    pub transaction_end: fn(bool),
}

static CALLBACKS: OnceLock<Callbacks> = OnceLock::new();

/// Registers `callbacks` for the life of the process, from `_PG_init`;
/// a backend forked from a postmaster that preloaded the library inherits
/// them. Each runs behind a guard: a panic becomes an ERROR.
pub fn register_callbacks(callbacks: Callbacks) {
    if CALLBACKS.set(callbacks).is_err() {
        return;
    }
    // SAFETY: registers plain functions for the process's lifetime, once.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0usize));
        for cache in [
            pg_sys::SysCacheIdentifier::AUTHOID,
            pg_sys::SysCacheIdentifier::AUTHMEMMEMROLE,
            pg_sys::SysCacheIdentifier::AUTHMEMROLEMEM,
        ] {
            pg_sys::CacheRegisterSyscacheCallback(cache as i32, Some(on_roles), pg_sys::Datum::from(0usize));
        }
        pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
        pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if let Some(c) = CALLBACKS.get() {
        (c.relation)(relid);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_roles(_arg: pg_sys::Datum, _cacheid: i32, _hash: u32) {
    if let Some(c) = CALLBACKS.get() {
        (c.roles)();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subxact(
    event: pg_sys::SubXactEvent::Type,
    subxact: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        if let Some(c) = CALLBACKS.get() {
            (c.subtransaction_abort)(subxact);
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    let abort = event == pg_sys::XactEvent::XACT_EVENT_ABORT || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT;
    if abort || event == pg_sys::XactEvent::XACT_EVENT_PREPARE {
        if let Some(c) = CALLBACKS.get() {
            (c.transaction_end)(abort);
        }
    }
}

/// PostgreSQL's complaint about `pattern` as a POSIX regular expression
/// (SQLSTATE 2201B), None if it compiles.
pub fn regex_problem(pattern: &str) -> Option<String> {
    use pgrx::pg_sys::panic::CaughtError;
    use pgrx::pg_sys::PgTryBuilder;
    let pattern = pattern.to_string();
    PgTryBuilder::new(move || {
        // SAFETY: textregexeq takes two text datums and a collation.
        unsafe {
            pg_sys::OidFunctionCall2Coll(
                pg_sys::Oid::from(pg_sys::F_TEXTREGEXEQ),
                pg_sys::DEFAULT_COLLATION_OID,
                "".into_datum().expect("text datum"),
                pattern.as_str().into_datum().expect("text datum"),
            );
        }
        None
    })
    .catch_when(pgrx::PgSqlErrorCode::ERRCODE_INVALID_REGULAR_EXPRESSION, |e| {
        Some(match e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r.message().to_string(),
            CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
        })
    })
    .execute()
}

/// Table `relid`, opened and locked like a regclass argument
/// (AccessShareLock); the oid must name an existing table.
pub fn open_relation(relid: pg_sys::Oid) -> pgrx::PgRelation {
    // SAFETY: callers pass oids of registered tables, whose rows in the
    // segment catalog name existing tables.
    unsafe { pgrx::PgRelation::with_lock(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE) }
}

/// The value of setting `name` (a custom one may be unset: None), read
/// without a query: `is_member` asks for every row of a query.
pub fn setting(name: &std::ffi::CStr) -> Option<String> {
    // SAFETY: a lookup in the GUC tables; the value is copied before any
    // other GUC call can change it.
    unsafe {
        let value = pg_sys::GetConfigOption(name.as_ptr(), true, false);
        (!value.is_null()).then(|| std::ffi::CStr::from_ptr(value).to_string_lossy().into_owned())
    }
}
