//! The SQL API: a thin layer that reads the catalog, calls the language core,
//! and turns failures into PostgreSQL errors with their SQLSTATE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::error::{Diagnostic, ErrorKind};

mod language;
pub(crate) mod members;
mod registration;
mod segment;

pub use language::compile_checked;

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

/// Raises a definition's diagnostic as an ERROR; the message names line and column.
pub fn raise(d: &Diagnostic) -> ! {
    let mut report = ErrorReport::new(code(d.kind), d.to_string(), "pg_segments")
        .set_detail(format!("segment definition, line {} column {}", d.line, d.col));
    if let Some(h) = &d.hint {
        report = report.set_hint(h.clone());
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Raises an ERROR with the given SQLSTATE.
pub fn fail(code: PgSqlErrorCode, message: String) -> ! {
    ErrorReport::new(code, message, "pg_segments").report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

pub fn fail_hint(code: PgSqlErrorCode, message: String, hint: &str) -> ! {
    ErrorReport::new(code, message, "pg_segments").set_hint(hint.to_string()).report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

pub fn bad_argument(message: String) -> ! {
    fail(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message)
}
