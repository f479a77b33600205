//! pg_segments: CRM-style contact segmentation inside PostgreSQL.
//!
//! The language (parser, checker, SQL generation) is the `segments_lang`
//! crate, free of PostgreSQL. This crate adapts it, in layers whose imports
//! run one way:
//!
//! - `api`: the SQL functions (`#[pg_extern]`); nothing imports it;
//! - `maintain`: keeping active segments exact, the trigger path;
//! - `state`: the catalog as the language sees it, privileges, counts,
//!   segment liveness, backend caches and their invalidation;
//! - `pg`: the only code with `unsafe` and raw `pg_sys` calls.
#![deny(unsafe_code)]

mod api;
mod maintain;
mod pg;
mod state;

pgrx::extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
pgrx::extension_sql_file!("../sql/maintain_trigger.sql", name = "maintain_trigger", requires = ["bootstrap"]);

::pgrx::pg_module_magic!(name, version);

#[allow(non_snake_case)]
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    pg::worker::init();
    pg::trigger::set_handler(maintain::trigger::fired);
    pg::ddl::set_handler(api::schema::schema_change_start);
    state::cache::install(state::cache::Hooks {
        table: |relid| {
            maintain::feeds::forget(relid);
            state::counts::table_changed(relid);
        },
        subtransaction_abort: |subxact| {
            // What the row trigger collected in the aborted subtransaction,
            // and the positions of count rows it wrote.
            maintain::trigger::forget_aborted(subxact);
            state::counts::forget_own_rows();
        },
        transaction_end: |abort| {
            if abort {
                maintain::trigger::forget_all();
            }
            state::counts::forget_own_rows();
        },
    });
}

// The in-database tests live in pgrx-tests/ (one tier per directory);
// `#[pg_schema]` needs an inline module, hence the include.
#[cfg(feature = "pg_test")]
#[pgrx::pg_schema]
mod tests {
    include!("../pgrx-tests/mod.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    /// The test server does not inherit the harness's environment: the
    /// differential test's seed and length reach it as settings.
    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        ["SEGMENTS_SEED", "SEGMENTS_ROUNDS"]
            .iter()
            .filter_map(|var| {
                let value: u64 = std::env::var(var).ok()?.parse().ok()?;
                Some(&*Box::leak(format!("segments.test_{} = '{value}'", var[9..].to_lowercase()).into_boxed_str()))
            })
            .collect()
    }
}
