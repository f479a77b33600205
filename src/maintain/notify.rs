//! `NOTIFY segments`: one notification per statement, with a JSON summary
//! of the tracked, shared segments whose membership it changed.

use pgrx::prelude::*;
use segments_lang::codegen::literal;

use super::definitions::Target;
use super::recompute::Delta;
use crate::pg::spi;
use crate::state::privilege::regclass_text;

/// The summary entry of segment `t` that `d` changed.
pub fn entry(t: &Target, d: Delta) -> String {
    format!(
        "{{\"id\":{},\"name\":{},\"entered\":{},\"left\":{}}}",
        t.id,
        serde_json::Value::String(t.name.clone()),
        d.entered,
        d.left
    )
}

/// Sends the notification of a statement that changed the segments of
/// `source` that `summary` lists (nothing if it lists none).
pub fn notify(source: pg_sys::Oid, summary: Vec<String>) {
    if summary.is_empty() {
        return;
    }
    let payload = format!(
        "{{\"source\":{},\"segments\":[{}]}}",
        serde_json::Value::String(regclass_text(source)),
        summary.join(",")
    );
    spi::run(&format!("SELECT pg_catalog.pg_notify('segments', {})", literal(&payload)), &[]);
}
