//! The SQL functions of the language tools (SPEC §2, "Language tools").
//!
//! A thin layer: it reads the catalog, calls the core, and turns core
//! diagnostics into PostgreSQL errors with their SQLSTATE.

use pgrx::pg_sys::panic::{CaughtError, ErrorReport};
use pgrx::pg_sys::PgTryBuilder;
use pgrx::prelude::*;
use pgrx::{JsonB, PgRelation, PgSqlErrorCode};

use crate::error::{Diagnostic, ErrorKind, Problem, Severity};
use crate::{ast, catalog, codegen, format, parser, typecheck};

fn code(kind: ErrorKind) -> PgSqlErrorCode {
    match kind {
        ErrorKind::Syntax => PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
        ErrorKind::UnknownColumn => PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
        ErrorKind::UnknownObject => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        ErrorKind::TypeMismatch => PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        ErrorKind::InvalidValue => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::Limit => PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX,
        ErrorKind::Cycle => PgSqlErrorCode::ERRCODE_INVALID_OBJECT_DEFINITION,
    }
}

/// Raises the diagnostic as an ERROR; the message names line and column.
pub fn raise(d: &Diagnostic) -> ! {
    let mut report = ErrorReport::new(code(d.kind), d.to_string(), "pg_segments")
        .set_detail(format!("segment definition, line {} column {}", d.line, d.col));
    if let Some(h) = &d.hint {
        report = report.set_hint(h.clone());
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

pub fn bad_argument(message: String) -> ! {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, "pg_segments").report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Compiles each MATCHES pattern with PostgreSQL's regex engine, so that a
/// bad pattern is reported by `check()` instead of failing later at run time.
fn regex_problems(expr: &ast::Expr) -> Vec<Problem> {
    expr.regexes()
        .into_iter()
        .filter_map(|(pattern, span)| {
            let pattern = pattern.to_string();
            PgTryBuilder::new(move || {
                // SAFETY: textregexeq takes two text datums and a collation.
                unsafe {
                    pg_sys::OidFunctionCall2Coll(
                        pg_sys::Oid::from(pg_sys::F_TEXTREGEXEQ),
                        pg_sys::DEFAULT_COLLATION_OID,
                        "".into_datum().expect("text datum"),
                        pattern.as_str().into_datum().expect("text datum"),
                    );
                }
                None
            })
            .catch_when(PgSqlErrorCode::ERRCODE_INVALID_REGULAR_EXPRESSION, move |e| {
                let message = match e {
                    CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r.message().to_string(),
                    CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
                };
                Some(Problem::error(ErrorKind::InvalidValue, span, message))
            })
            .execute()
        })
        .collect()
}

fn parse_or_raise(definition: &str) -> ast::Expr {
    parser::parse(definition).unwrap_or_else(|p| raise(&p.locate(definition)))
}

/// Compiles `definition` against `source` into a WHERE predicate on the
/// source table (referenced by its bare name), raising the first error.
pub fn compile(definition: &str, source: &PgRelation) -> String {
    let expr = parse_or_raise(definition);
    let cat = catalog::for_table(source.oid());
    match typecheck::check(&expr, &cat) {
        Ok(checked) => {
            if let Some(p) = regex_problems(&expr).into_iter().next() {
                raise(&p.locate(definition));
            }
            codegen::predicate(&checked.pred, &codegen::ident(&cat.source.name), &cat.key)
        }
        Err(problems) => raise(&problems[0].clone().locate(definition)),
    }
}

#[pg_extern(immutable, parallel_safe)]
fn parse(definition: &str) -> JsonB {
    let expr = parse_or_raise(definition);
    JsonB(serde_json::to_value(&expr).expect("the syntax tree always serialises"))
}

/// Canonical text of a syntax tree. The tree is validated by parsing the text
/// it formats to, so a hand-made tree can never produce text that means
/// something else.
#[pg_extern(immutable, parallel_safe, name = "format")]
fn format_tree(tree: JsonB) -> String {
    let expr: ast::Expr = serde_json::from_value(tree.0)
        .unwrap_or_else(|e| bad_argument(format!("not a segment syntax tree: {e}")));
    let text = format::format(&expr);
    format::format(&parse_or_raise(&text))
}

#[pg_extern(stable, name = "check")]
fn check(
    definition: &str,
    source: default!(Option<PgRelation>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(severity, String),
        name!(message, String),
        name!(line, i32),
        name!(col, i32),
        name!(hint, Option<String>),
    ),
> {
    let diagnostics: Vec<Diagnostic> = match parser::parse(definition) {
        Err(p) => vec![p.locate(definition)],
        Ok(expr) => match source {
            None => vec![],
            Some(rel) => {
                let cat = catalog::for_table(rel.oid());
                match typecheck::check(&expr, &cat) {
                    Ok(checked) => regex_problems(&expr).into_iter().chain(checked.warnings).collect(),
                    Err(errors) => errors,
                }
                .into_iter()
                .map(|p| p.locate(definition))
                .collect()
            }
        },
    };
    TableIterator::new(diagnostics.into_iter().map(|d| {
        let severity = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        (severity.to_string(), d.message, d.line as i32, d.col as i32, d.hint)
    }))
}

#[pg_extern(stable, name = "explain")]
fn explain(definition: &str, source: default!(Option<PgRelation>, "NULL")) -> String {
    match source {
        Some(rel) => compile(definition, &rel),
        None => bad_argument("explain() needs a source table: segments.explain(definition, 'contacts')".into()),
    }
}
