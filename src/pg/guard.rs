//! RAII guards for what PostgreSQL wants paired. Each restores on drop, so
//! an early return cannot leave one unpaired; while a panic unwinds (an
//! ERROR on its way out) they leave the restoring to the (sub)transaction
//! abort, as PostgreSQL's own code does.

use pgrx::pg_sys;

/// A snapshot pushed on the active snapshot stack, popped on drop.
pub struct ActiveSnapshot(());

impl ActiveSnapshot {
    /// The latest snapshot, as PostgreSQL reads its catalogs: what
    /// committed up to now, also under REPEATABLE READ.
    pub fn latest() -> ActiveSnapshot {
        // SAFETY: inside a transaction; popped by Drop.
        unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot()) };
        ActiveSnapshot(())
    }

    /// The snapshot a new statement of this transaction would take, seeing
    /// everything the transaction wrote so far (the command counter is
    /// advanced first).
    pub fn for_statement() -> ActiveSnapshot {
        // SAFETY: inside a transaction; popped by Drop.
        unsafe {
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            pg_sys::CommandCounterIncrement();
            pg_sys::UpdateActiveSnapshotCommandId();
        }
        ActiveSnapshot(())
    }
}

impl Drop for ActiveSnapshot {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // SAFETY: the snapshot this guard pushed is on top.
            unsafe { pg_sys::PopActiveSnapshot() };
        }
    }
}

/// Runs `f` under the latest snapshot (`ActiveSnapshot::latest`).
pub fn under_latest_snapshot<R>(f: impl FnOnce() -> R) -> R {
    let _snapshot = ActiveSnapshot::latest();
    f()
}

/// The current user switched to another role in a security-restricted
/// context; the caller's identity restored on drop.
pub struct AsUser {
    saved_user: pg_sys::Oid,
    saved_context: i32,
}

impl AsUser {
    pub fn switch_to(role: pg_sys::Oid) -> AsUser {
        let mut saved_user = pg_sys::Oid::INVALID;
        let mut saved_context: i32 = 0;
        // SAFETY: plain reads and writes of the backend's current user.
        unsafe {
            pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
            pg_sys::SetUserIdAndSecContext(
                role,
                saved_context
                    | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                    | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
            );
        }
        AsUser { saved_user, saved_context }
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // SAFETY: restores what `switch_to` saved.
            unsafe { pg_sys::SetUserIdAndSecContext(self.saved_user, self.saved_context) };
        }
    }
}

/// `search_path = pg_catalog, pg_temp` in a GUC nest level of its own,
/// what `SET search_path` on a function does; the previous value restored
/// on drop.
pub struct PinnedSearchPath {
    level: i32,
}

impl PinnedSearchPath {
    pub fn pin() -> PinnedSearchPath {
        // SAFETY: a GUC nest level opened here and closed by Drop, as
        // fmgr_security_definer does.
        let level = unsafe {
            let level = pg_sys::NewGUCNestLevel();
            pg_sys::set_config_option(
                c"search_path".as_ptr(),
                c"pg_catalog, pg_temp".as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
            level
        };
        PinnedSearchPath { level }
    }
}

impl Drop for PinnedSearchPath {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // SAFETY: closes the nest level `pin` opened.
            unsafe { pg_sys::AtEOXact_GUC(true, self.level) };
        }
    }
}

/// Runs `f` with the search_path pinned (`PinnedSearchPath`).
pub fn pinned_search_path<R>(f: impl FnOnce() -> R) -> R {
    let _pinned = PinnedSearchPath::pin();
    f()
}
