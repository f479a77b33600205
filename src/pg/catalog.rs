//! Relations, columns and types read from PostgreSQL's catalog caches, as
//! the executor reads them, without a statement. The catalog queries they
//! replace joined up to eight catalog tables: planning those joins was the
//! largest part of a new connection's first `create_segment`
//! (bench/findings.md). Nothing here locks a relation, as those queries
//! did not.

use std::ffi::CStr;

use pgrx::pg_sys;

/// A type's schema, name and `typtype`, as `pg_type` spells them.
#[derive(Clone, Default)]
pub struct TypeName {
    pub schema: String,
    pub name: String,
    pub typtype: String,
}

impl TypeName {
    /// `"schema"."name"`, each quoted only where it must be (as
    /// `format('%I.%I', …)` quotes).
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.name))
    }
}

/// A column of a table, with its declared type, the type it compares as
/// (a domain's base type), and that type's element type if it is an array.
pub struct ColumnEntry {
    pub name: String,
    pub declared: TypeName,
    pub base: TypeName,
    pub element: Option<TypeName>,
    pub not_null: bool,
    /// Its collation is nondeterministic.
    pub nondeterministic: bool,
}

/// The schema and name of relation `oid`, None if there is none.
pub fn relation_name(oid: pg_sys::Oid) -> Option<(String, String)> {
    // SAFETY: catalog cache lookups; the strings are copied.
    unsafe {
        let name = owned(pg_sys::get_rel_name(oid))?;
        let schema = owned(pg_sys::get_namespace_name(pg_sys::get_rel_namespace(oid)))?;
        Some((schema, name))
    }
}

/// The columns of relation `oid` in order, dropped ones left out; none if
/// there is no such relation.
pub fn columns(oid: pg_sys::Oid) -> Vec<ColumnEntry> {
    // SAFETY: catalog cache lookups, each tuple released after it is read.
    unsafe {
        let class = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::RELOID as i32, pg_sys::Datum::from(oid));
        if class.is_null() {
            return vec![];
        }
        let natts = (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_class>(class)).relnatts;
        pg_sys::ReleaseSysCache(class);
        let mut columns = vec![];
        for attnum in 1..=natts {
            let tuple = pg_sys::SearchSysCache2(
                pg_sys::SysCacheIdentifier::ATTNUM as i32,
                pg_sys::Datum::from(oid),
                pg_sys::Datum::from(attnum),
            );
            if tuple.is_null() {
                continue;
            }
            let a = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_attribute>(tuple);
            let entry = (!a.attisdropped).then(|| {
                let (declared, base, element) = column_types(a.atttypid);
                ColumnEntry {
                    name: CStr::from_ptr(a.attname.data.as_ptr()).to_string_lossy().into_owned(),
                    declared,
                    base,
                    element,
                    not_null: a.attnotnull,
                    nondeterministic: a.attcollation != pg_sys::Oid::INVALID
                        && !pg_sys::get_collation_isdeterministic(a.attcollation),
                }
            });
            pg_sys::ReleaseSysCache(tuple);
            columns.extend(entry);
        }
        columns
    }
}

/// The type `oid` by name, None if there is none.
pub fn type_name(oid: pg_sys::Oid) -> Option<TypeName> {
    // SAFETY: as in `type_row`.
    unsafe { type_row(oid).map(|t| t.name) }
}

/// A column's declared type, the type it compares as (its base type if it
/// is a domain) and, if that is an array, its element type.
unsafe fn column_types(oid: pg_sys::Oid) -> (TypeName, TypeName, Option<TypeName>) {
    unsafe {
        let Some(declared) = type_row(oid) else { return Default::default() };
        let base = if declared.name.typtype == "d" { type_row(pg_sys::getBaseType(oid)) } else { Some(declared.clone()) };
        let Some(base) = base else { return (declared.name, TypeName::default(), None) };
        let element = if base.category == b'A' as std::ffi::c_char { type_row(base.element).map(|e| e.name) } else { None };
        (declared.name, base.name, element)
    }
}

#[derive(Clone)]
struct TypeRow {
    name: TypeName,
    category: std::ffi::c_char,
    element: pg_sys::Oid,
}

unsafe fn type_row(oid: pg_sys::Oid) -> Option<TypeRow> {
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::TYPEOID as i32, pg_sys::Datum::from(oid));
        if tuple.is_null() {
            return None;
        }
        let t = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_type>(tuple);
        let row = TypeRow {
            name: TypeName {
                schema: owned(pg_sys::get_namespace_name(t.typnamespace)).unwrap_or_default(),
                name: CStr::from_ptr(t.typname.data.as_ptr()).to_string_lossy().into_owned(),
                typtype: (t.typtype as u8 as char).to_string(),
            },
            category: t.typcategory,
            element: t.typelem,
        };
        pg_sys::ReleaseSysCache(tuple);
        Some(row)
    }
}

/// A palloc'd C string, copied (None for NULL).
unsafe fn owned(s: *mut std::ffi::c_char) -> Option<String> {
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
}

/// An identifier quoted as `quote_ident` quotes it.
fn quote(ident: &str) -> String {
    let c = std::ffi::CString::new(ident).unwrap_or_default();
    // SAFETY: returns its argument or a palloc'd copy, read before either goes.
    unsafe { CStr::from_ptr(pg_sys::quote_identifier(c.as_ptr())).to_string_lossy().into_owned() }
}
