//! The segment definition language (SPEC §3, §4), with no PostgreSQL in it.
//!
//! One pipeline: `lexer` → `parser` (text to `ast`) → `typecheck` (against
//! a `model::Catalog`, the tables as the extension read them) → `codegen`
//! (SQL). `compile` runs it end to end and derives everything the extension
//! keeps about a definition; `format` turns a tree back into canonical text.
//! Failures are typed `error::Diagnostic`s; the extension maps their kinds to
//! SQLSTATEs at its edge.

#![forbid(unsafe_code)]

pub mod ast;
pub mod codegen;
pub mod compile;
pub mod error;
pub mod format;
pub mod lexer;
pub mod model;
pub mod parser;
pub mod typecheck;

pub use compile::{compile, Compiled};
