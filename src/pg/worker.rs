//! The background worker that calls `segments.refresh_due()` every
//! `segments.sweep_interval` seconds in `segments.sweep_database`, when the
//! library is in `shared_preload_libraries`.

use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use crate::pg::spi;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

pub static SWEEP_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(60);
pub static SWEEP_DATABASE: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(Some(c"postgres"));

pub fn init() {
    GucRegistry::define_int_guc(
        c"segments.sweep_interval",
        c"Seconds between two sweeps of time-relative segments by the background worker.",
        c"Time-relative active segments are at most this stale as time passes.",
        &SWEEP_INTERVAL,
        1,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_string_guc(
        c"segments.sweep_database",
        c"Database whose segments the background worker sweeps.",
        c"The worker connects to this database when it starts (a change takes effect at its next start).",
        &SWEEP_DATABASE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    // SAFETY: reading a backend global set by the postmaster.
    if super::backend::preloading() {
        BackgroundWorkerBuilder::new("pg_segments sweeper")
            .set_function("segments_sweeper_main")
            .set_library("pg_segments")
            .enable_spi_access()
            // If the database is missing (or was dropped), try again after one
            // interval: never more stale than promised once it is there.
            .set_restart_time(Some(Duration::from_secs(SWEEP_INTERVAL.get().max(1) as u64)))
            .load();
    }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn segments_sweeper_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = SWEEP_DATABASE.get().map(|d| d.to_string_lossy().into_owned()).unwrap_or_else(|| "postgres".into());
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    loop {
        let interval = Duration::from_secs(SWEEP_INTERVAL.get().max(1) as u64);
        if !BackgroundWorker::wait_latch(Some(interval)) {
            break;
        }
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a worker to reload its settings.
            super::backend::reload_configuration();
        }
        BackgroundWorker::transaction(|| {
            let installed = spi::get::<bool>(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_segments')", &[])
            .unwrap_or(false);
            if installed {
                Spi::run("SELECT segments.refresh_due()").expect("sweeping time-relative segments");
            }
        });
    }
}
