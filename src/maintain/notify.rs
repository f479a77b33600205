//! `NOTIFY segments`: one notification per statement, with a JSON summary
//! of the tracked, shared segments whose membership it changed.

use pgrx::prelude::*;
use segments_lang::codegen::literal;

use super::definitions::Target;
use super::recompute::Delta;
use crate::pg::spi;
use crate::state::privilege::regclass_text;

/// One segment's line of a summary, and the tenant whose notification it
/// goes into.
pub struct Entry {
    tenant: Option<String>,
    json: String,
}

/// The summary entry of segment `t` that `d` changed.
pub fn entry(t: &Target, d: Delta) -> Entry {
    let json = format!(
        "{{\"id\":{},\"name\":{},\"entered\":{},\"left\":{}}}",
        t.id,
        serde_json::Value::String(t.name.clone()),
        d.entered,
        d.left
    );
    Entry { tenant: t.tenant.clone(), json }
}

/// The most bytes a notification's payload holds here: PostgreSQL refuses
/// 8,000 and more ("payload string too long"), which would fail the write.
pub const PAYLOAD_MAX: usize = 7900;

/// Sends the notification of a statement that changed the segments of
/// `source` that `summary` lists (nothing if it lists none): one per tenant
/// (none of them names another tenant's segments), or as many as it takes
/// to keep each payload under `PAYLOAD_MAX`, each a whole JSON document of
/// the same shape.
pub fn notify(source: pg_sys::Oid, mut summary: Vec<Entry>) {
    if summary.is_empty() {
        return;
    }
    summary.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    let source = serde_json::Value::String(regclass_text(source));
    for tenant in summary.chunk_by(|a, b| a.tenant == b.tenant) {
        let head = match &tenant[0].tenant {
            Some(t) => format!("{{\"source\":{source},\"tenant\":{},\"segments\":[", serde_json::Value::String(t.clone())),
            None => format!("{{\"source\":{source},\"segments\":["),
        };
        let entries: Vec<String> = tenant.iter().map(|e| e.json.clone()).collect();
        for part in payloads(&head, &entries) {
            spi::run(&format!("SELECT pg_catalog.pg_notify('segments', {})", literal(&part)), &[]);
        }
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
