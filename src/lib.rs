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

::pgrx::pg_module_magic!(name, version);
#[cfg(test)]
mod testing;
#[cfg(test)]
mod golden;
#[cfg(test)]
mod randomized;
