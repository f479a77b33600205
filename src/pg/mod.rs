//! The PostgreSQL layer: the only code that calls `pg_sys` functions or
//! holds `unsafe`. Everything above it works through these safe wrappers.
//!
//! - `error`: raising errors, and the one table from the language's error
//!   kinds to SQLSTATEs;
//! - `guard`: RAII guards that pair what PostgreSQL wants paired (a pushed
//!   snapshot, the current user, a `search_path` nest level);
//! - `catalog`: relations, columns and types from the catalog caches;
//! - `spi`: running SQL: kept generic plans, the latest snapshot, results;
//! - `heap`: rows written, found and locked with the executor's own
//!   routines, without starting a statement (the write path's flips, the
//!   segments of a contact's tenant);
//! - `ddl`: the event trigger that sees schema changes before they run;
//! - `trigger`: the trigger entry point, its relation, row images and
//!   transition tables;
//! - `rowfilter`: predicates planned once and evaluated in process on row
//!   images;
//! - `worker`: the background worker that calls `refresh_due()`;
//! - `backend`: locks, the transaction's isolation and identity, cache
//!   invalidation messages and the callbacks that receive them.
//!
//! Guards restore on drop, but not while a panic unwinds: a PostgreSQL
//! ERROR reaches Rust as a panic, and the (sub)transaction abort that
//! follows restores snapshots, users and settings itself; calling into
//! PostgreSQL from inside that unwinding is not allowed.
#![allow(unsafe_code)]

pub mod backend;
pub mod catalog;
pub mod ddl;
pub mod error;
pub mod guard;
pub mod heap;
pub mod rowfilter;
pub mod spi;
pub mod trigger;
pub mod worker;
