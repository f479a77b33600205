//! Builds the language's `Catalog` from `pg_catalog`.

use pgrx::prelude::*;

use crate::model::{Catalog, Column, Table, Ty};

/// Facts about one column, read in one query per table.
const COLUMNS: &str = "
SELECT a.attname::text,
       a.attnotnull,
       bn.nspname::text, b.typname::text, b.typtype::text,
       en.nspname::text, e.typname::text, e.typtype::text,
       pg_catalog.format('%I.%I', dn.nspname, d.typname)
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_type d ON d.oid OPERATOR(pg_catalog.=) a.atttypid
  JOIN pg_catalog.pg_namespace dn ON dn.oid OPERATOR(pg_catalog.=) d.typnamespace
  -- a domain compares like its base type
  JOIN pg_catalog.pg_type b ON b.oid OPERATOR(pg_catalog.=)
       (CASE WHEN d.typtype OPERATOR(pg_catalog.=) 'd' THEN d.typbasetype ELSE d.oid END)
  JOIN pg_catalog.pg_namespace bn ON bn.oid OPERATOR(pg_catalog.=) b.typnamespace
  LEFT JOIN pg_catalog.pg_type e ON b.typcategory OPERATOR(pg_catalog.=) 'A'
       AND e.oid OPERATOR(pg_catalog.=) b.typelem
  LEFT JOIN pg_catalog.pg_namespace en ON en.oid OPERATOR(pg_catalog.=) e.typnamespace
 WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
 ORDER BY a.attnum";

const NAME: &str = "
SELECT n.nspname::text, c.relname::text
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.oid OPERATOR(pg_catalog.=) $1";

/// The single-column primary key, if there is one.
const PRIMARY_KEY: &str = "
SELECT a.attname::text
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
       AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
 WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisprimary AND i.indnatts OPERATOR(pg_catalog.=) 1";

/// Runs catalog queries under the latest snapshot, as PostgreSQL reads its
/// catalogs: the caller holds a lock on the table, and a statement that waited
/// for that lock must see the table as committed since, not as it was when
/// the statement began (found by tests/isolation/specs/catalog_fresh.spec).
fn latest<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: balanced push/pop; an ERROR in between unwinds the snapshot
    // stack with the (sub)transaction.
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot()) };
    let r = f();
    unsafe { pg_sys::PopActiveSnapshot() };
    r
}

pub fn table(oid: pg_sys::Oid) -> Table {
    latest(|| Spi::connect(|client| {
        let name = client.select(NAME, Some(1), &[oid.into()]).expect("reading pg_class");
        let row = name.first();
        let schema: String = row.get(1).ok().flatten().unwrap_or_default();
        let relname: String = row.get(2).ok().flatten().unwrap_or_default();
        let mut columns = vec![];
        for row in client.select(COLUMNS, None, &[oid.into()]).expect("reading pg_attribute") {
            let get = |i: usize| row.get::<String>(i).ok().flatten().unwrap_or_default();
            let not_null = row.get::<bool>(2).ok().flatten().unwrap_or(false);
            let (elem_schema, elem_name, elem_typtype) = (get(6), get(7), get(8));
            let declared = get(9);
            let (ty, sql_type) = if elem_name.is_empty() {
                (Ty::from_pg(&get(3), &get(4), &get(5)), declared)
            } else {
                let elem = Ty::from_pg(&elem_schema, &elem_name, &elem_typtype);
                let elem_sql = format!("{}.{}", crate::codegen::ident(&elem_schema), crate::codegen::ident(&elem_name));
                (Ty::Array(Box::new(elem)), format!("{elem_sql}[]"))
            };
            let mut column = Column::new(&get(1), ty, &sql_type);
            column.not_null = not_null;
            columns.push(column);
        }
        Table { schema, name: relname, columns }
    }))
}

/// A catalog for `source` with no registrations: its columns and key only.
pub fn for_table(oid: pg_sys::Oid) -> Catalog {
    let table = table(oid);
    let key = latest(|| Spi::get_one_with_args::<String>(PRIMARY_KEY, &[oid.into()]))
        .ok()
        .flatten()
        .or_else(|| table.columns.first().map(|c| c.name.clone()))
        .unwrap_or_default();
    Catalog::new(table, &key)
}
