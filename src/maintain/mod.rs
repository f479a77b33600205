//! Keeping active segments exact, in the writing transaction.
//!
//! Every registered table (source, relation, lookup target) gets statement
//! triggers with transition tables, and an UPDATE row trigger while an
//! active segment reads it (`install`). For each statement the trigger
//! (`trigger`) finds the contacts it touched, locks their source rows (so
//! writers on the same contact serialize and writers on different contacts
//! never wait), and brings only those contacts up to date for only the
//! active segments that read the table (`definitions`, `feeds`), plus the
//! segments that reference them, in dependency order. Four shortcuts:
//! segments that read only the contact's row are decided by the UPDATE row
//! trigger in process (`pg::rowfilter`) and written as flips (`flips`);
//! rows inserted into the source enter those segments the same way
//! (`admit`), and the others straight from the transition table
//! (`recompute::Rows::New`); rows of a relation recompute
//! only the segments whose filters they pass (`trigger::relevant`); and rows
//! inserted into a relation decide its `ANY` and `NO` segments on their own
//! (`Feed::decided`, `trigger::maintain_relation`).
//!
//! - `trigger`: trigger entry and dispatch;
//! - `feeds`, `definitions`: what a table's trigger maintains;
//! - `recompute`: by SQL, for contacts, new rows or everything;
//! - `flips`: decided flips written without a statement;
//! - `admit`: new contacts decided by their row filters;
//! - `install`: which triggers a table has, what segments read;
//! - `inflight`: writers meeting rows not committed yet;
//! - `writers`: definition changes against concurrent writers;
//! - `sweep`: the passing of time (the background worker that calls it
//!   is `pg::worker`);
//! - `notify`: `NOTIFY segments`.

pub mod admit;
pub mod definitions;
pub mod feeds;
pub mod flips;
pub mod inflight;
pub mod install;
pub mod notify;
pub mod recompute;
pub mod sweep;
pub mod trigger;
pub mod writers;
