//! Assigning contacts to static segments: one contact (`assign(key, …)`),
//! many (`assign(keys, …)`), or the (key, segment) pairs of a file loaded
//! into a table (`assign_rows`, sql/reading.sql). One rule set for all:
//! every segment named must be visible, static and the caller's to change
//! (or created, with `create_missing`), all of one source and tenant; with
//! `replace`, each contact imported leaves every other static segment of
//! the source (and tenant) that the caller may change. One query finds the
//! contacts, one statement takes them out of other segments (`replace`),
//! and they enter theirs as a write's flips do, without a statement per
//! row (`maintain::flips`).

use std::collections::{BTreeMap, HashMap, HashSet};

use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};

use super::members::{in_tenant, require_static};
use super::registration::require_registered;
use super::segment::{create_static, find_opt, modifiable, Segment};
use super::{bad_argument, fail};
use crate::maintain;
use crate::maintain::flips::{self, Flip};
use crate::pg::heap::{self, Keys, RowLock};
use crate::pg::spi;
use crate::state::counts;
use crate::state::privilege::as_owner;
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
    let Some((done, reg, tenant)) = import(&pairs, &names, replace, false) else { return };
    if let Some(key) = done.unknown.first() {
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
    // The (contact, segment) pairs of contacts that exist.
    let mut kept: Vec<(String, i64)> =
        pairs.iter().filter(|(k, _)| known.contains(k.as_str())).map(|(k, n)| (k.clone(), segment_of[n.as_str()].id)).collect();
    kept.sort_unstable();
    kept.dedup();
    let name_of: HashMap<i64, String> = segs.iter().map(|(_, s)| (s.id, s.name.clone())).collect();
    let imported: Vec<String> = {
        let mut k: Vec<String> = known.into_iter().collect();
        k.sort_unstable();
        k
    };
    if replace {
        let statics = changeable_statics(source, tenant.as_deref());
        let ids: Vec<i64> = statics.iter().map(|(id, _)| *id).collect();
        for (id, n) in leave_others(&reg, &kept, &ids) {
            let name = statics.iter().find(|(s, _)| *s == id).map(|(_, n)| n.clone()).unwrap_or_default();
            done.removed.insert(name, n);
            as_owner(|| maintain::recompute::propagate(id, &reg, Some(&imported)));
        }
    }
    let mut ids: Vec<i64> = segs.iter().map(|(_, s)| s.id).collect();
    ids.sort_unstable();
    ids.dedup();
    // Into the segments as a write's flips go (without a statement per
    // row, a member already there found first, a segment dropped
    // meanwhile skipped): an INSERT … ON CONFLICT DO NOTHING of the pairs
    // spent most of its time in the speculative insertion.
    let flips: Vec<Flip> =
        kept.iter().map(|(key, segment)| Flip { segment: *segment, key: key.clone(), enter: true, generation: None }).collect();
    // Not logged as changes, as add_members' are not.
    let added = as_owner(|| flips::write(&reg, &flips.iter().collect::<Vec<_>>(), &[]));
    for id in ids {
        let n = added.get(&id).map_or(0, |d| d.entered);
        done.added.insert(name_of[&id].clone(), n);
        if n > 0 {
            as_owner(|| {
                counts::fold(id);
                maintain::recompute::propagate(id, &reg, Some(&imported))
            });
        }
    }
    Some((done, reg, tenant))
}

/// Takes the contacts of `pairs` (key, segment) out of every segment of
/// `ids` that the pairs do not give them, in one statement; counts the
/// changes and returns them per segment.
fn leave_others(reg: &Registered, pairs: &[(String, i64)], ids: &[i64]) -> Vec<(i64, i64)> {
    if pairs.is_empty() || ids.is_empty() {
        return vec![];
    }
    let key = ident(&reg.key);
    let (keys, segments): (Vec<String>, Vec<i64>) = pairs.iter().cloned().unzip();
    let mut distinct = keys.clone();
    distinct.dedup();
    let sql = format!(
        "WITH p AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]::{typ}[]),
                                             pg_catalog.unnest($2::pg_catalog.int8[])) AS p(k, s)),
              changed AS (DELETE FROM {membership} m
                           WHERE m.{key} OPERATOR(pg_catalog.=) ANY ($4::pg_catalog.text[]::{typ}[])
                             AND m.segment_id OPERATOR(pg_catalog.=) ANY ($3::pg_catalog.int8[])
                             AND NOT EXISTS (SELECT FROM p WHERE p.k OPERATOR(pg_catalog.=) m.{key}
                                                             AND p.s OPERATOR(pg_catalog.=) m.segment_id)
                          RETURNING m.segment_id),
              n AS (SELECT segment_id, pg_catalog.count(*) AS n FROM changed GROUP BY segment_id),
              {counted}
         SELECT COALESCE(pg_catalog.array_agg(x.v ORDER BY n.segment_id, x.o), '{{}}')
           FROM n, LATERAL (VALUES (n.segment_id, 1), (n.n, 2)) AS x(v, o)",
        typ = reg.key_type,
        membership = reg.membership(),
        counted = counts::counted("SELECT segment_id, OPERATOR(pg_catalog.-) n FROM n"),
    );
    // (segment, count) pairs, flattened: a statement that writes runs
    // through `spi::get`.
    let flat = as_owner(|| spi::get::<Vec<i64>>(&sql, &[keys.into(), segments.into(), ids.to_vec().into(), distinct.into()]).unwrap_or_default());
    let changed: Vec<(i64, i64)> = flat.chunks(2).map(|c| (c[0], c[1])).collect();
    as_owner(|| changed.iter().for_each(|(id, _)| counts::fold(*id)));
    changed
}

/// Which of `keys` are contacts of `reg`'s source (of `tenant`).
fn existing(reg: &Registered, keys: &[&str], tenant: Option<&str>) -> HashSet<String> {
    // Without tenants or row security, locking a key's row is finding it.
    let secured = secured(reg);
    let found: HashSet<String> = if reg.tenant_column.is_none() && !secured {
        keys.iter().map(|k| k.to_string()).collect()
    } else {
        visible(reg, keys, tenant, secured)
    };
    // Locked against deletion until commit (as a relation row's contact
    // is): a contact deleted meanwhile would keep the members given to it
    // here, which its DELETE's trigger could not see. One gone meanwhile is
    // unknown.
    let found: Vec<&String> = {
        let mut f: Vec<&String> = found.iter().collect();
        f.sort_unstable();
        f
    };
    let locked = heap::statement(|st| st.lock_rows(reg.relid, &reg.key, Keys::Text(&found), RowLock::KeyShare, true));
    match locked {
        Some(locked) => found.into_iter().zip(locked).filter(|(_, l)| *l).map(|(k, _)| k.clone()).collect(),
        None => found.into_iter().cloned().collect(),
    }
}

/// Which of `keys` the caller sees as contacts of `reg`'s source (of
/// `tenant`): probed in process unless row security may hide rows from the
/// caller (`secured`), whom the query reads as.
fn visible(reg: &Registered, keys: &[&str], tenant: Option<&str>, secured: bool) -> HashSet<String> {
    let also = reg.tenant_column.as_deref().zip(tenant);
    if !secured {
        if let Some(found) = heap::present(reg.relid, &reg.key, keys, also) {
            return keys.iter().zip(found).filter(|(_, hit)| *hit).map(|(k, _)| k.to_string()).collect();
        }
    }
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let found = spi::get::<Vec<String>>(
        &format!(
            "SELECT COALESCE(pg_catalog.array_agg(k), '{{}}') FROM pg_catalog.unnest($1::pg_catalog.text[]) k
              WHERE EXISTS (SELECT FROM {} s WHERE s.{} OPERATOR(pg_catalog.=) k::{}{})",
            registry::qualified_name(reg.relid),
            ident(&reg.key),
            reg.key_type,
            in_tenant(reg, "s", 2),
        ),
        &[keys.into(), tenant.into()],
    )
    .unwrap_or_default();
    found.into_iter().collect()
}

/// Whether row security may hide rows of `reg`'s source from the caller,
/// who must be allowed to read it.
fn secured(reg: &Registered) -> bool {
    crate::state::privilege::require_select(reg.relid);
    spi::get::<bool>(
        "SELECT c.relrowsecurity FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
        &[reg.relid.into()],
    ) != Some(false)
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
