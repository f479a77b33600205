//! The SQL API: a thin layer that reads the catalog, calls the language,
//! and turns failures into PostgreSQL errors with their SQLSTATE. Nothing
//! else in the extension imports it.

mod language;
mod members;
mod registration;
mod segment;

pub use crate::pg::error::{bad_argument, fail, fail_hint, raise, required};
pub use language::compile;
