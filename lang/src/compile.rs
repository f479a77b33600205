//! One step from a definition's text to everything the extension keeps or
//! derives about it: the checked tree, its canonical text, the SQL predicate,
//! what it reads and references, and the incremental pieces (the sweep of
//! time boundaries, the relevance filters of a relation's rows, the rows that
//! decide a segment alone). The extension calls nothing else of the pipeline
//! to store or maintain a segment.

use crate::ast::{Cmp, Expr, Test, Value};
use crate::codegen;
use crate::error::{Diagnostic, Span};
use crate::format;
use crate::model::{Catalog, Lookup, Table, Tenant, Ty};
use crate::parser;
use crate::typecheck::{self, OperandKind, Pred, Typed};

/// The alias the predicates give the source row.
pub const ROW: &str = "\"s\"";

/// A definition compiled against a source's catalog.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The syntax tree, as parsed.
    pub expr: Expr,
    /// The checked (resolved and typed) tree.
    pub pred: Pred,
    /// The canonical text (`format`), what the catalog stores.
    pub text: String,
    /// WHERE predicate over the source row `ROW`.
    pub predicate: String,
    /// `predicate` without its tenant's condition (`within`): the same for
    /// every tenant's segment of the same definition, and what a tenant's
    /// row filters evaluate on rows known to be that tenant's.
    pub predicate_any_tenant: String,
    /// `(schema, table, column)` of every column read (`Pred::columns`).
    pub reads: Vec<(String, String, String)>,
    /// Ids of the segments referenced with `IN SEGMENT`.
    pub references: Vec<i64>,
    /// The lookups read (`Pred::lookups`): a contact's membership depends on
    /// the lookup rows it points at.
    pub lookups: Vec<Lookup>,
    /// Reads nothing but the contact's own row (the clock allowed).
    pub row_local: bool,
    /// Depends on the passing of time (has a sweep).
    pub time_relative: bool,
    source: Table,
    key: String,
}

/// Parses, checks and compiles `definition` for the source of `catalog`,
/// whose key column is `key`. The first problem is the error.
pub fn compile(definition: &str, catalog: &Catalog, key: &str) -> Result<Compiled, Diagnostic> {
    let expr = parser::parse(definition).map_err(|p| p.locate(definition))?;
    let checked = typecheck::check(&expr, catalog).map_err(|problems| first(problems, definition))?;
    Ok(from_checked(expr, checked.pred, catalog, key))
}

fn first(problems: Vec<crate::error::Problem>, definition: &str) -> Diagnostic {
    match problems.into_iter().next() {
        Some(p) => p.locate(definition),
        None => crate::error::Problem::error(crate::error::ErrorKind::Syntax, Span::default(), "invalid definition")
            .locate(definition),
    }
}

fn from_checked(expr: Expr, pred: Pred, catalog: &Catalog, key: &str) -> Compiled {
    let source = catalog.source.clone();
    let predicate_any_tenant = codegen::predicate(&pred, ROW, key);
    let pred = match &catalog.tenant {
        Some(tenant) => within(pred, tenant, &source),
        None => pred,
    };
    Compiled {
        text: format::format(&expr),
        predicate: codegen::predicate(&pred, ROW, key),
        predicate_any_tenant,
        reads: pred.columns(&source),
        references: pred.segments(),
        lookups: pred.lookups(),
        row_local: pred.row_local(),
        time_relative: codegen::sweep_candidates(&pred, &source, key, "pg_catalog.now()").is_some(),
        expr,
        pred,
        source,
        key: key.to_string(),
    }
}

/// `pred` for the rows of one tenant: `<tenant column> = <value> AND pred`,
/// so that everything compiled from it (the predicate, the columns read, the
/// row filters) holds only that tenant's contacts, and a contact moved to
/// another tenant leaves.
fn within(pred: Pred, tenant: &Tenant, source: &Table) -> Pred {
    let Some(column) = source.columns.iter().find(|c| c.name == tenant.column) else { return pred };
    // A number is written into the SQL as it is: only what the lexer would
    // accept as one; anything else becomes a quoted literal of the column's type.
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let number = tenant.value.strip_prefix('-').unwrap_or(&tenant.value);
    let value = match column.ty {
        Ty::Integer | Ty::Numeric if number.split_once('.').map_or(digits(number), |(a, b)| digits(a) && digits(b)) => {
            Value::Number { span: Span::default(), value: tenant.value.clone() }
        }
        _ => Value::String { span: Span::default(), value: tenant.value.clone() },
    };
    let operand = Typed { kind: OperandKind::Column(column.clone()), ty: column.ty.clone(), nullable: !column.not_null };
    Pred::And(vec![Pred::Test { operand, test: Test::Compare { cmp: Cmp::Eq, value } }, pred])
}

impl Compiled {
    /// Reads nothing but the contact's own row, and not the clock: its
    /// answer for a row image is final.
    pub fn local(&self) -> bool {
        self.row_local && !self.time_relative
    }

    /// The contacts (`k`, as text) that time may have moved across one of
    /// the definition's boundaries since `since` (an SQL timestamptz); None
    /// when it does not depend on time.
    pub fn sweep(&self, since: &str) -> Option<String> {
        codegen::sweep_candidates(&self.pred, &self.source, &self.key, since)
    }

    /// A condition on a row of relation `relation` (alias `ROW`) that holds
    /// when the row can change the segment (`codegen::relevance`).
    pub fn relevance(&self, relation: &str) -> String {
        codegen::relevance(&self.pred, relation, ROW, &self.key)
    }

    /// `relevance` at any moment since the last sweep
    /// (`codegen::relevance_lately`); the same as `relevance` when the
    /// segment does not depend on time.
    pub fn relevance_lately(&self, relation: &str) -> String {
        if self.time_relative {
            codegen::relevance_lately(&self.pred, relation, ROW, &self.key)
        } else {
            self.relevance(relation)
        }
    }

    /// What a row inserted into `relation` that passes `relevance` makes of
    /// its contact, when that alone decides it (`codegen::insert_decides`).
    pub fn insert_decides(&self, relation: &str) -> Option<bool> {
        codegen::insert_decides(&self.pred, relation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Column, Ty};

    fn catalog() -> Catalog {
        let contacts = Table {
            schema: "public".into(),
            name: "contacts".into(),
            columns: vec![
                Column::new("id", Ty::Integer, "pg_catalog.int8").not_null(),
                Column::new("score", Ty::Integer, "pg_catalog.int4"),
                Column::new("created_at", Ty::TimestampTz, "pg_catalog.timestamptz"),
                Column { nondeterministic: true, ..Column::new("email", Ty::Text, "pg_catalog.text") },
            ],
        };
        Catalog::new(contacts, "id")
    }

    #[test]
    fn a_tenant_restricts_the_rows_and_is_read() {
        let mut cat = catalog();
        cat.tenant = Some(Tenant { column: "score".into(), value: "42".into() });
        let c = compile("created_at IS NULL", &cat, "id").unwrap();
        assert_eq!(c.text, "created_at IS NULL");
        assert!(c.predicate.starts_with("(\"s\".\"score\" OPERATOR(pg_catalog.=) 42 AND "), "{}", c.predicate);
        assert!(c.reads.iter().any(|(_, _, col)| col == "score"), "{:?}", c.reads);
        assert!(c.local());
        // Without the tenant: what every tenant's segment of this definition shares.
        assert_eq!(c.predicate_any_tenant, compile("created_at IS NULL", &catalog(), "id").unwrap().predicate);
        assert!(!c.predicate_any_tenant.contains("score"), "{}", c.predicate_any_tenant);
        // Not a number: quoted, never written into the SQL as it is.
        cat.tenant = Some(Tenant { column: "score".into(), value: "1 OR true".into() });
        let c = compile("created_at IS NULL", &cat, "id").unwrap();
        assert!(c.predicate.contains("'1 OR true'::"), "{}", c.predicate);
    }

    #[test]
    fn compiles_everything_from_one_text() {
        let c = compile("score  >  5", &catalog(), "id").unwrap();
        assert_eq!(c.text, "score > 5");
        assert!(c.predicate.contains("\"s\".\"score\""), "{}", c.predicate);
        assert!(c.local());
        assert!(c.references.is_empty());
        assert_eq!(c.reads, vec![("public".into(), "contacts".into(), "score".into())]);
        assert!(c.sweep("pg_catalog.now()").is_none());
    }

    #[test]
    fn time_relative_definitions_have_a_sweep_and_are_not_local() {
        let c = compile("created_at WITHIN LAST 7 days", &catalog(), "id").unwrap();
        assert!(c.time_relative && c.row_local && !c.local());
        assert!(c.sweep("pg_catalog.now()").is_some());
    }

    #[test]
    fn patterns_on_nondeterministic_text_use_the_default_collation() {
        for (definition, collated) in [
            ("email CONTAINS 'x'", true),
            ("email STARTS WITH 'x'", true),
            ("email LIKE 'x%'", true),
            ("email MATCHES 'x'", true),
            ("email = 'x'", false),
            ("email IN ('x', 'y')", false),
        ] {
            let c = compile(definition, &catalog(), "id").unwrap();
            assert_eq!(c.predicate.contains("COLLATE pg_catalog.\"default\""), collated, "{definition}: {}", c.predicate);
        }
    }

    #[test]
    fn the_lookups_read_are_listed_once() {
        let mut cat = catalog();
        let companies = Table {
            schema: "public".into(),
            name: "companies".into(),
            columns: vec![Column::new("id", Ty::Integer, "pg_catalog.int8"), Column::new("country", Ty::Text, "pg_catalog.text")],
        };
        cat.lookups.push(Lookup { name: "company".into(), via_column: "score".into(), target: companies, target_key: "id".into() });
        let c = compile("company.country = 'DE' OR NOT (company.country IS EMPTY AND score > 1)", &cat, "id").unwrap();
        assert_eq!(c.lookups.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["company"]);
        assert!(compile("score > 1", &cat, "id").unwrap().lookups.is_empty());
    }

    #[test]
    fn the_first_problem_is_the_error_with_its_position() {
        let e = compile("scor > 5", &catalog(), "id").unwrap_err();
        assert_eq!((e.line, e.col), (1, 1));
        assert_eq!(e.kind, crate::error::ErrorKind::UnknownColumn);
        let e = compile("score >", &catalog(), "id").unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Syntax);
    }
}
