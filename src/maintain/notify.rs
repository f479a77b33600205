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

/// The most bytes a notification's payload holds here: PostgreSQL refuses
/// 8,000 and more ("payload string too long"), which would fail the write.
pub const PAYLOAD_MAX: usize = 7900;

/// Sends the notification of a statement that changed the segments of
/// `source` that `summary` lists (nothing if it lists none): one, or as
/// many as it takes to keep each payload under `PAYLOAD_MAX`, each a whole
/// JSON document of the same shape.
pub fn notify(source: pg_sys::Oid, summary: Vec<String>) {
    let head = format!("{{\"source\":{},\"segments\":[", serde_json::Value::String(regclass_text(source)));
    for part in payloads(&head, &summary) {
        spi::run(&format!("SELECT pg_catalog.pg_notify('segments', {})", literal(&part)), &[]);
    }
}

/// `head` followed by entries of `summary` and `]}`, as few payloads as fit
/// under `PAYLOAD_MAX` (an entry is never split; one longer than the limit
/// alone is left out, which a segment name's length rules out).
pub fn payloads(head: &str, summary: &[String]) -> Vec<String> {
    let mut parts = vec![];
    let mut part = String::new();
    for e in summary {
        if head.len() + e.len() + 2 > PAYLOAD_MAX {
            continue;
        }
        if !part.is_empty() && head.len() + part.len() + 1 + e.len() + 2 > PAYLOAD_MAX {
            parts.push(format!("{head}{part}]}}"));
            part.clear();
        }
        if !part.is_empty() {
            part.push(',');
        }
        part.push_str(e);
    }
    if !part.is_empty() {
        parts.push(format!("{head}{part}]}}"));
    }
    parts
}
