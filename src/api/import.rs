//! Assigning contacts to static segments: one contact (`assign(key, …)`),
//! many (`assign(keys, …)`), or the (key, segment) pairs of a file loaded
//! into a table (`assign_rows`, sql/reading.sql). One rule set for all:
//! every segment named must be visible, static and the caller's to change
//! (or created, with `create_missing`), all of one source and tenant; with
//! `replace`, each contact imported leaves every other static segment of
//! the source (and tenant) that the caller may change. Set-based: a
//! statement per segment, whatever the number of contacts.

use std::collections::{BTreeMap, HashMap, HashSet};

use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};

use super::members::{add, in_tenant, remove, require_static};
use super::registration::require_registered;
use super::segment::{create_static, find_opt, modifiable, Segment};
use super::{bad_argument, fail};
use crate::pg::spi;
use crate::state::registry::{self, Registered};
use segments_lang::codegen::ident;

/// What an import did: members added and removed per segment, the segments
/// it created, and the keys that are no contact (of the tenant).
#[derive(serde::Serialize, Default)]
struct Imported {
    added: BTreeMap<String, i64>,
    removed: BTreeMap<String, i64>,
    created: Vec<String>,
    unknown: Vec<String>,
}

/// Puts one contact into the named static segments (CSV-import semantics):
/// every named segment must exist, be visible, static and modifiable, and
/// the contact must exist, or nothing changes.
#[pg_extern(volatile, name = "_assign")]
#[search_path(pg_catalog, pg_temp)]
fn assign(key: &str, segment_names: Vec<Option<String>>, replace: bool) {
    let names: Vec<String> = segment_names.into_iter().flatten().collect();
    let pairs: Vec<(String, String)> = names.iter().map(|n| (key.to_string(), n.clone())).collect();
    let done = import(&pairs, &names, replace, false);
    if let Some(unknown) = done.and_then(|(d, reg, tenant)| d.unknown.first().map(|k| (k.clone(), reg, tenant))) {
        let (key, reg, tenant) = unknown;
        let of = tenant.map(|t| format!(" of tenant {t}")).unwrap_or_default();
        fail(PgSqlErrorCode::ERRCODE_NO_DATA_FOUND, format!("contact {key} does not exist in {}{of}", registry::qualified_name(reg.relid)));
    }
}

/// Every contact of `keys` into every segment of `segment_names`.
#[pg_extern(volatile, name = "_assign_all")]
#[search_path(pg_catalog, pg_temp)]
fn assign_all(keys: Vec<Option<String>>, segment_names: Vec<Option<String>>, replace: bool, create_missing: bool) -> JsonB {
    let names: Vec<String> = segment_names.into_iter().flatten().collect();
    let keys: Vec<String> = keys.into_iter().flatten().collect();
    let pairs: Vec<(String, String)> = keys.iter().flat_map(|k| names.iter().map(|n| (k.clone(), n.clone()))).collect();
    outcome(import(&pairs, &names, replace, create_missing))
}

/// Contact `keys[i]` into segment `segment_names[i]`, for every i: the
/// rows of a file (`assign_rows`).
#[pg_extern(volatile, name = "_assign_pairs")]
#[search_path(pg_catalog, pg_temp)]
fn assign_pairs(keys: Vec<Option<String>>, segment_names: Vec<Option<String>>, replace: bool, create_missing: bool) -> JsonB {
    if keys.len() != segment_names.len() {
        bad_argument("as many segment names as keys".into());
    }
    let pairs: Vec<(String, String)> = keys
        .into_iter()
        .zip(segment_names)
        .enumerate()
        .map(|(i, pair)| match pair {
            (Some(k), Some(n)) => (k, n),
            _ => fail(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, format!("row {} has no key or no segment", i + 1)),
        })
        .collect();
    let mut names: Vec<String> = vec![];
    for (_, n) in &pairs {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    outcome(import(&pairs, &names, replace, create_missing))
}

fn outcome(done: Option<(Imported, Registered, Option<String>)>) -> JsonB {
    let imported = done.map(|(d, _, _)| d).unwrap_or_default();
    JsonB(serde_json::to_value(&imported).expect("an import's outcome serialises"))
}

/// The import of `pairs` (key, segment name) into the segments `names`;
/// None when nothing is named (and nothing to replace).
fn import(pairs: &[(String, String)], names: &[String], replace: bool, create_missing: bool) -> Option<(Imported, Registered, Option<String>)> {
    crate::state::replication::require_origin();
    let mut done = Imported::default();
    // The segments named, then those to create (of the source of the others).
    let mut segs: Vec<(String, Segment)> = vec![];
    let mut missing: Vec<&String> = vec![];
    for name in names {
        match find_opt(name) {
            Some(s) => {
                let s = modifiable(s);
                require_static(&s);
                segs.push((name.clone(), s));
            }
            None if create_missing => missing.push(name),
            None => fail(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("segment \"{name}\" does not exist")),
        }
    }
    let known_source = segs.first().map(|(_, s)| s.source);
    if let Some((_, other)) = segs.iter().find(|(_, s)| Some(s.source) != known_source) {
        bad_argument(format!("segment \"{}\" belongs to another source", other.name));
    }
    // Found within segments.tenant if set; without it, they may be of
    // several tenants: the contacts must be one tenant's.
    let tenant = segs.first().and_then(|(_, s)| s.tenant.clone());
    if let Some((_, other)) = segs.iter().find(|(_, s)| s.tenant != tenant) {
        bad_argument(format!("segment \"{}\" belongs to another tenant", other.name));
    }
    for name in missing {
        // Names are case-insensitive: a file may spell a new one two ways.
        let s = match segs.iter().find(|(_, s)| s.name.to_lowercase() == name.to_lowercase()) {
            Some((_, s)) => s.clone(),
            None => {
                done.created.push(name.clone());
                create_static(name, known_source)
            }
        };
        segs.push((name.clone(), s));
    }
    let Some((_, first)) = segs.first() else {
        if replace {
            bad_argument("assign(…, replace => true) needs at least one segment to know the source".into());
        }
        return None;
    };
    let (source, tenant) = (first.source, first.tenant.clone());
    let reg = require_registered(source);
    let segment_of: HashMap<&str, &Segment> = segs.iter().map(|(n, s)| (n.as_str(), s)).collect();

    let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let known = existing(&reg, &keys, tenant.as_deref());
    done.unknown = keys.iter().filter(|k| !known.contains(**k)).map(|k| k.to_string()).collect();
    // Per segment, its contacts in this import that exist.
    let mut assigned: BTreeMap<i64, (String, Vec<String>)> = BTreeMap::new();
    for (k, n) in pairs {
        let s = segment_of[n.as_str()];
        let entry = assigned.entry(s.id).or_insert_with(|| (s.name.clone(), vec![]));
        if known.contains(k.as_str()) {
            entry.1.push(k.clone());
        }
    }
    if replace {
        let imported: Vec<&String> = {
            let mut all: Vec<&String> = known.iter().collect();
            all.sort_unstable();
            all
        };
        for (id, name) in changeable_statics(source, tenant.as_deref()) {
            let stay: HashSet<&str> = assigned.get(&id).map(|(_, k)| k.iter().map(String::as_str).collect()).unwrap_or_default();
            let leaving: Vec<String> = imported.iter().filter(|k| !stay.contains(k.as_str())).map(|k| k.to_string()).collect();
            let n = remove(id, &reg, &leaving);
            if n > 0 {
                done.removed.insert(name, n);
            }
        }
    }
    for (_, (name, keys)) in &assigned {
        let s = segment_of.values().find(|s| &s.name == name).expect("an assigned segment is named");
        let n = add(s, &reg, keys);
        done.added.insert(name.clone(), n);
    }
    Some((done, reg, tenant))
}

/// Which of `keys` are contacts of `reg`'s source (of `tenant`).
fn existing(reg: &Registered, keys: &[&str], tenant: Option<&str>) -> HashSet<String> {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let found = spi::get::<Vec<String>>(
        &format!(
            "SELECT COALESCE(pg_catalog.array_agg(k), '{{}}') FROM pg_catalog.unnest($1::pg_catalog.text[]) k
              WHERE EXISTS (SELECT FROM {} s WHERE s.{} OPERATOR(pg_catalog.=) k::{}{})",
            registry::qualified_name(reg.relid),
            ident(&reg.key),
            reg.key_type,
            in_tenant(reg, "s").replace("$3", "$2"),
        ),
        &[keys.into(), tenant.into()],
    )
    .unwrap_or_default();
    found.into_iter().collect()
}

/// The static segments of `source` (of `tenant`) the caller may see and
/// change, with their names.
fn changeable_statics(source: pg_sys::Oid, tenant: Option<&str>) -> Vec<(i64, String)> {
    spi::rows(
        "SELECT id, name FROM segments.segment_def
          WHERE source OPERATOR(pg_catalog.=) $1 AND kind OPERATOR(pg_catalog.=) 'static' AND tenant IS NOT DISTINCT FROM $2
            AND (pg_catalog.pg_has_role(owner, 'MEMBER') OR segments.is_admin())
          ORDER BY id",
        &[source.into(), tenant.into()],
        |r| (spi::column::<i64>(r, 1).unwrap_or_default(), spi::column::<String>(r, 2).unwrap_or_default()),
    )
}
