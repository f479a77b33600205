//! pg_segments: CRM-style contact segmentation inside PostgreSQL.
//!
//! The language core (`lexer`, `parser`, `ast`, `format`, `model`,
//! `typecheck`, `codegen`, `error`) imports nothing from pgrx and is tested
//! without a server; `catalog` and `api` adapt it to PostgreSQL.

pub mod ast;
pub mod codegen;
pub mod error;
pub mod format;
pub mod lexer;
pub mod model;
pub mod parser;
pub mod typecheck;

mod api;
mod catalog;
mod direct;
mod maintain;
mod privilege;
mod rowfilter;
mod spi;
mod sweeper;

pgrx::extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);

::pgrx::pg_module_magic!(name, version);

#[allow(non_snake_case)]
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    sweeper::init();
}
#[cfg(test)]
mod testing;
#[cfg(test)]
mod golden;
#[cfg(test)]
mod randomized;
#[cfg(any(test, feature = "pg_test"))]
mod rng;

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
