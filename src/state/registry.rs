//! Builds the language's `Catalog` from `pg_catalog`.

use pgrx::prelude::*;

use segments_lang::codegen;
use segments_lang::model::{Catalog, Column, Lookup, Relation, SegmentRef, Table, Tenant, Ty};

use crate::pg::catalog;
use crate::pg::guard::under_latest_snapshot as latest;
use crate::pg::spi::{self, first, read_kept, result_column};

/// The single-column primary key, if there is one.
const PRIMARY_KEY: &str = "
SELECT a.attname::text
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
       AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
 WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisprimary AND i.indnatts OPERATOR(pg_catalog.=) 1";

// Catalog queries run under the latest snapshot (`latest`), as PostgreSQL
// reads its catalogs: the caller holds a lock on the table, and a statement
// that waited for that lock must see the table as committed since, not as it
// was when the statement began (tests/isolation/specs/catalog_fresh.spec).

pub fn table(oid: pg_sys::Oid) -> Table {
    let (schema, name) = catalog::relation_name(oid).unwrap_or_default();
    let columns = catalog::columns(oid)
        .into_iter()
        .map(|c| {
            let (ty, sql_type) = match &c.element {
                None => (Ty::from_pg(&c.base.schema, &c.base.name, &c.base.typtype), c.declared.qualified()),
                Some(e) => {
                    let sql = format!("{}.{}[]", codegen::ident(&e.schema), codegen::ident(&e.name));
                    (Ty::Array(Box::new(Ty::from_pg(&e.schema, &e.name, &e.typtype))), sql)
                }
            };
            let mut column = Column::new(&c.name, ty, &sql_type);
            column.not_null = c.not_null;
            column.nondeterministic = c.nondeterministic;
            column
        })
        .collect();
    Table { schema, name, columns }
}

/// The single-column primary key of a table, if it has one.
pub fn primary_key(oid: pg_sys::Oid) -> Option<String> {
    latest(|| Spi::connect(|_| {
        read_kept(PRIMARY_KEY, &[pg_sys::OIDOID], &[oid.into()]);
        first::<String>(1)
    }))
}

/// A catalog for `source` with no registrations: its columns and key only.
pub fn for_table(oid: pg_sys::Oid) -> Catalog {
    let table = table(oid);
    let key = primary_key(oid).or_else(|| table.columns.first().map(|c| c.name.clone())).unwrap_or_default();
    Catalog::new(table, &key)
}

/// `"schema"."table"` of a relation, always qualified.
pub fn qualified_name(oid: pg_sys::Oid) -> String {
    let (schema, name) = catalog::relation_name(oid).unwrap_or_default();
    codegen::qualified(&schema, &name)
}

/// A type's schema-qualified name, for DDL.
pub fn type_name(oid: pg_sys::Oid) -> String {
    catalog::type_name(oid).map_or_else(|| "pg_catalog.text".into(), |t| t.qualified())
}

/// A registered source, as `segments.source` records it.
#[derive(Clone)]
pub struct Registered {
    pub relid: pg_sys::Oid,
    /// The source table, `"schema"."table"`.
    pub source: String,
    pub key: String,
    /// The key's SQL type, schema-qualified (for casts of key parameters).
    pub key_type: String,
    pub membership_schema: String,
    pub membership_table: String,
    /// The membership table's oid (the row trigger writes it directly).
    pub membership_relid: pg_sys::Oid,
    /// The column saying which tenant a contact belongs to, if the source
    /// has tenants: each of its segments holds one tenant's contacts.
    pub tenant_column: Option<String>,
}

impl Registered {
    /// ` AND <alias>.<key> = ANY ($1::text[]::<key type>[])`: the contacts
    /// whose keys (text forms) the first parameter lists.
    pub fn and_key_in_param(&self, alias: &str) -> String {
        format!(
            " AND {alias}.{} OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::{}[])",
            codegen::ident(&self.key),
            self.key_type
        )
    }

    /// `"segments"."contacts_membership"`.
    pub fn membership(&self) -> String {
        codegen::qualified(&self.membership_schema, &self.membership_table)
    }
}

const REGISTERED: &str = "
SELECT s.key_column::pg_catalog.text, s.key_type::pg_catalog.oid, s.membership::pg_catalog.oid, s.tenant_column::pg_catalog.text
  FROM segments.source s
 WHERE s.relid OPERATOR(pg_catalog.=) $1";

pub fn registered(relid: pg_sys::Oid) -> Option<Registered> {
    let (key, key_type, membership_relid, tenant_column) = latest(|| {
        Spi::connect(|_| {
            read_kept(REGISTERED, &[pg_sys::OIDOID], &[relid.into_datum()?]);
            Some((first::<String>(1)?, first::<pg_sys::Oid>(2)?, first::<pg_sys::Oid>(3)?, first::<String>(4)))
        })
    })?;
    let (source_schema, source_table) = catalog::relation_name(relid)?;
    let (membership_schema, membership_table) = catalog::relation_name(membership_relid)?;
    Some(Registered {
        relid,
        source: codegen::qualified(&source_schema, &source_table),
        key,
        key_type: catalog::type_name(key_type)?.qualified(),
        membership_schema,
        membership_table,
        membership_relid,
        tenant_column,
    })
}

/// The tables registered for `source`: the source itself, its relations
/// and its lookup targets, sorted by oid.
pub fn registered_tables(source: pg_sys::Oid) -> Vec<pg_sys::Oid> {
    let mut tables = spi::get::<Vec<pg_sys::Oid>>(
        "SELECT COALESCE(pg_catalog.array_agg(t), '{}') FROM (
             SELECT $1 AS t
             UNION SELECT relation::pg_catalog.oid FROM segments.relation WHERE source OPERATOR(pg_catalog.=) $1
             UNION SELECT target::pg_catalog.oid FROM segments.lookup WHERE source OPERATOR(pg_catalog.=) $1) x",
        &[source.into()],
    )
    .unwrap_or_default();
    tables.sort_unstable_by_key(|t| t.to_u32());
    tables
}

/// Whether `table` is registered in any role: a source, a relation or a
/// lookup target.
pub fn is_registered_table(table: pg_sys::Oid) -> bool {
    spi::get::<bool>(
        "SELECT EXISTS (SELECT FROM segments.source WHERE relid OPERATOR(pg_catalog.=) $1)
             OR EXISTS (SELECT FROM segments.relation WHERE relation OPERATOR(pg_catalog.=) $1)
             OR EXISTS (SELECT FROM segments.lookup WHERE target OPERATOR(pg_catalog.=) $1)",
        &[table.into()],
    )
    .unwrap_or(false)
}

/// The only registered source, if there is exactly one.
pub fn only_source() -> Option<pg_sys::Oid> {
    let sources = spi::get::<Vec<pg_sys::Oid>>(
        "SELECT pg_catalog.array_agg(relid::pg_catalog.oid) FROM segments.source", &[])
    .unwrap_or_default();
    match sources.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// The full catalog of a registered source for a definition of `tenant`'s
/// (None: the source has no tenants): its columns, registered relations and
/// lookups, and the segments of the source and tenant the caller can see.
pub fn for_source(reg: &Registered, tenant: Option<&str>) -> Catalog {
    with_segments(shape(reg), reg, tenant)
}

/// What the catalogs of every tenant of a source share: its columns,
/// registered relations and lookups; no segments.
pub fn shape(reg: &Registered) -> Catalog {
    let mut cat = Catalog::new(table(reg.relid), &reg.key);
    let texts = |i: i32| result_column::<String>(i).into_iter().map(Option::unwrap_or_default);
    let oids = |i: i32| result_column::<pg_sys::Oid>(i).into_iter().map(|o| o.unwrap_or(pg_sys::Oid::INVALID));
    let relations: Vec<_> = Spi::connect(|_| {
        read_kept(
            "SELECT name, relation::pg_catalog.oid, contact_column::text FROM segments.relation
              WHERE source OPERATOR(pg_catalog.=) $1 ORDER BY name",
            &[pg_sys::OIDOID],
            &[reg.relid.into()],
        );
        texts(1).zip(oids(2)).zip(texts(3)).collect()
    });
    for ((name, oid), contact_column) in relations {
        cat.relations.push(Relation { name, table: table(oid), contact_column });
    }
    let lookups: Vec<_> = Spi::connect(|_| {
        read_kept(
            "SELECT name, via_column::text, target::pg_catalog.oid, target_key::text FROM segments.lookup
              WHERE source OPERATOR(pg_catalog.=) $1 ORDER BY name",
            &[pg_sys::OIDOID],
            &[reg.relid.into()],
        );
        texts(1).zip(texts(2)).zip(oids(3)).zip(texts(4)).collect()
    });
    for (((name, via_column), oid), target_key) in lookups {
        cat.lookups.push(Lookup { name, via_column, target: table(oid), target_key });
    }
    cat
}

/// `cat` (the `shape` of `reg`'s source) for a definition of `tenant`'s:
/// pinned to the tenant, with the segments of the source and tenant.
pub fn with_segments(mut cat: Catalog, reg: &Registered, tenant: Option<&str>) -> Catalog {
    if let (Some(column), Some(value)) = (&reg.tenant_column, tenant) {
        cat.tenant = Some(Tenant { column: column.clone(), value: value.to_string() });
    }
    let texts = |i: i32| result_column::<String>(i).into_iter().map(Option::unwrap_or_default);
    cat.segments = Spi::connect(|_| {
        read_kept(
            // A tenant's segments through the index on (source, tenant).
            if tenant.is_some() {
                "SELECT id, name FROM segments.segment_def
                  WHERE source OPERATOR(pg_catalog.=) $1 AND tenant OPERATOR(pg_catalog.=) $2 ORDER BY id"
            } else {
                "SELECT id, name FROM segments.segment_def
                  WHERE source OPERATOR(pg_catalog.=) $1 AND tenant IS NULL AND $2 OPERATOR(pg_catalog.=) '' ORDER BY id"
            },
            &[pg_sys::OIDOID, pg_sys::TEXTOID],
            &[reg.relid.into(), tenant.unwrap_or("").into_datum().expect("a text is a datum")],
        );
        result_column::<i64>(1)
            .into_iter()
            .zip(texts(2))
            .map(|(id, name)| SegmentRef {
                id: id.unwrap_or_default(),
                name,
                membership_schema: reg.membership_schema.clone(),
                membership_table: reg.membership_table.clone(),
                key_column: reg.key.clone(),
            })
            .collect()
    });
    cat
}
