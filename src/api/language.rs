//! The language tools (SPEC §2): parse, format, check, explain.

use pgrx::prelude::*;
use pgrx::{JsonB, PgRelation};

use super::{bad_argument, fail, raise};
use pgrx::PgSqlErrorCode;
use crate::pg::backend::{open_relation, regex_problem};
use segments_lang::error::{Diagnostic, ErrorKind, Problem, Severity};
use segments_lang::model::Catalog;
use crate::state::registry;
use segments_lang::{ast, codegen, format, parser, typecheck};

/// Compiles each MATCHES pattern with PostgreSQL's regex engine, so that a
/// bad pattern is reported by `check()` instead of failing later at run time.
fn regex_problems(expr: &ast::Expr) -> Vec<Problem> {
    expr.regexes()
        .into_iter()
        .filter_map(|(pattern, span)| {
            regex_problem(pattern).map(|message| Problem::error(ErrorKind::InvalidValue, span, message))
        })
        .collect()
}

fn parse_or_raise(definition: &str) -> ast::Expr {
    parser::parse(definition).unwrap_or_else(|p| raise(&p.locate(definition)))
}

/// Compiles `definition` for the source of `cat` (key column `key`),
/// raising the first problem (regexes included): what every command that
/// stores or explains a definition needs.
pub fn compile(definition: &str, cat: &Catalog, key: &str) -> segments_lang::Compiled {
    let compiled = segments_lang::compile(definition, cat, key).unwrap_or_else(|d| raise(&d));
    raise_regex_problem(&compiled.expr, definition);
    compiled
}

fn raise_regex_problem(expr: &ast::Expr, definition: &str) {
    if let Some(p) = regex_problems(expr).into_iter().next() {
        raise(&p.locate(definition));
    }
}

/// The catalog `check`/`explain` use: the registered source with its
/// relations, lookups and segments, or any table with just its columns.
fn catalog_of(source: &PgRelation) -> Catalog {
    match registry::registered(source.oid()) {
        // A definition checked or explained for the tenant the caller acts for.
        Some(reg) => registry::for_source(&reg, crate::state::tenant::current().as_deref()),
        None => registry::for_table(source.oid()),
    }
}

/// The only registered source, opened and locked like a regclass argument.
fn only_source() -> Option<PgRelation> {
    registry::only_source().map(open_relation)
}

/// The canonical text of a tree given as JSON text, validated by parsing it
/// back. Read as text (the SQL signatures taking jsonb are wrappers in
/// sql/reading.sql): pgrx's jsonb argument stops at serde_json's nesting
/// limit with an internal error.
pub fn text_of_tree(tree: &str) -> String {
    let expr = ast::from_json(tree).unwrap_or_else(|e| match e {
        ast::TreeError::TooDeep(_) => fail(PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX, e.to_string()),
        ast::TreeError::Invalid(_) => bad_argument(e.to_string()),
    });
    let text = format::format(&expr);
    format::format(&parse_or_raise(&text))
}

#[pg_extern(immutable, parallel_safe)]
fn parse(definition: &str) -> JsonB {
    let expr = parse_or_raise(definition);
    JsonB(serde_json::to_value(&expr).expect("the syntax tree always serialises"))
}

/// Canonical text of a syntax tree. The tree is validated by parsing the text
/// it formats to, so a hand-made tree can never produce text that means
/// something else.
#[pg_extern(immutable, parallel_safe, name = "_format")]
fn format_tree(tree: &str) -> String {
    text_of_tree(tree)
}

#[pg_extern(stable, name = "check")]
#[search_path(pg_catalog, pg_temp)]
fn check(
    definition: Option<&str>,
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
    // NULL: nothing to check, no rows.
    let Some(definition) = definition else { return TableIterator::new(vec![]) };
    let diagnostics: Vec<Diagnostic> = match parser::parse(definition) {
        Err(p) => vec![p.locate(definition)],
        Ok(expr) => match source.or_else(only_source) {
            None => vec![],
            Some(rel) => {
                let cat = catalog_of(&rel);
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
#[search_path(pg_catalog, pg_temp)]
fn explain(definition: Option<&str>, source: default!(Option<PgRelation>, "NULL")) -> Option<String> {
    // NULL: nothing to explain.
    let definition = definition?;
    let rel = source.or_else(only_source).unwrap_or_else(|| {
        bad_argument(
            "explain() needs a source table unless exactly one source is registered: segments.explain(definition, 'contacts')".into(),
        )
    });
    let cat = catalog_of(&rel);
    let compiled = compile(definition, &cat, &cat.key);
    Some(codegen::predicate(&compiled.pred, &codegen::ident(&cat.source.name), &cat.key))
}
