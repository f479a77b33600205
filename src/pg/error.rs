//! Raising errors. The SQLSTATE of a definition's problem comes from the
//! language's one table (`ErrorKind::sqlstate`); the extension's own
//! errors name theirs where they are raised.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
pub use pgrx::PgSqlErrorCode as Code;
use segments_lang::error::Diagnostic;

/// The error code of a five-character SQLSTATE, as MAKE_SQLSTATE packs it.
fn code_of(sqlstate: &str) -> Code {
    let packed = sqlstate.bytes().take(5).enumerate().fold(0i32, |acc, (i, c)| {
        acc | ((i32::from(c.wrapping_sub(b'0')) & 0x3F) << (6 * i))
    });
    Code::from(packed)
}

/// Raises a definition's diagnostic as an ERROR; the message names line and column.
pub fn raise(d: &Diagnostic) -> ! {
    let mut report = ErrorReport::new(code_of(d.sqlstate()), d.to_string(), "pg_segments")
        .set_detail(format!("segment definition, line {} column {}", d.line, d.col));
    if let Some(h) = &d.hint {
        report = report.set_hint(h.clone());
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Raises an ERROR with the given SQLSTATE.
pub fn fail(code: Code, message: String) -> ! {
    ErrorReport::new(code, message, "pg_segments").report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

pub fn fail_hint(code: Code, message: String, hint: &str) -> ! {
    ErrorReport::new(code, message, "pg_segments").set_hint(hint.to_string()).report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// 22023: an argument PostgreSQL accepted but pg_segments cannot use.
pub fn bad_argument(message: String) -> ! {
    fail(Code::ERRCODE_INVALID_PARAMETER_VALUE, message)
}

/// `value`, or 22004 for a NULL argument `name` of a function for which NULL
/// means nothing it could act on. Functions for which NULL means "nothing"
/// (`explain`, `check`, `segments_of`, …) answer NULL or no rows instead.
pub fn required<T>(value: Option<T>, name: &str) -> T {
    value.unwrap_or_else(|| fail(Code::ERRCODE_NULL_VALUE_NOT_ALLOWED, format!("argument \"{name}\" must not be NULL")))
}

/// 40001, as PostgreSQL words it.
pub fn serialization_failure(what: &str) -> ! {
    fail(Code::ERRCODE_T_R_SERIALIZATION_FAILURE, format!("could not serialize access due to concurrent {what}"))
}

/// 0A000.
pub fn not_supported(message: String, hint: &str) -> ! {
    fail_hint(Code::ERRCODE_FEATURE_NOT_SUPPORTED, message, hint)
}

#[cfg(any(test, feature = "pg_test"))]
pub fn sqlstate_code(sqlstate: &str) -> Code {
    code_of(sqlstate)
}
