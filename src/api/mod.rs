//! The SQL API: a thin layer that reads the catalog, calls the language,
//! and turns failures into PostgreSQL errors with their SQLSTATE. Nothing
//! else in the extension imports it (`_PG_init` hands `schema` to the
//! event trigger of `pg::ddl`).

mod import;
mod language;
mod members;
mod registration;
mod replication;
pub mod schema;
mod segment;

pub use crate::pg::error::{bad_argument, fail, fail_hint, raise, required};
pub use language::compile;
