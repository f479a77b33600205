//! Diagnostics of the segment definition language.
//!
//! Every error carries the byte span it refers to; line and column are derived
//! from the source text when the error leaves the core, so that the parser and
//! the checker only ever deal in byte offsets.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A half-open byte range `[start, end)` in the definition text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// What went wrong, in the terms the SQL edge maps to SQLSTATEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The text does not follow the grammar (42601).
    Syntax,
    /// A column, relation or lookup name that the source does not have (42703).
    UnknownColumn,
    /// A relation, lookup or segment that is not registered (42704).
    UnknownObject,
    /// An operator or value that does not fit the operand's type (42804).
    TypeMismatch,
    /// A value that is well-formed but not acceptable, e.g. a bad date (22023).
    InvalidValue,
    /// Depth, size or count limits (54001).
    Limit,
    /// A segment that would reference itself through `IN SEGMENT` (42P17).
    Cycle,
}

impl ErrorKind {
    /// The SQLSTATE a client sees for this kind.
    pub fn sqlstate(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "42601",
            ErrorKind::UnknownColumn => "42703",
            ErrorKind::UnknownObject => "42704",
            ErrorKind::TypeMismatch => "42804",
            ErrorKind::InvalidValue => "22023",
            ErrorKind::Limit => "54001",
            ErrorKind::Cycle => "42P17",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One diagnostic. `line` and `col` are 1-based; `col` counts characters.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[error("{message} at line {line}, column {col}")]
pub struct Diagnostic {
    pub kind: ErrorKind,
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    pub line: usize,
    pub col: usize,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn sqlstate(&self) -> &'static str {
        self.kind.sqlstate()
    }
}

/// A diagnostic before it has been placed in the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ErrorKind,
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    pub hint: Option<String>,
}

impl Problem {
    pub fn error(kind: ErrorKind, span: Span, message: impl Into<String>) -> Self {
        Problem { kind, severity: Severity::Error, message: message.into(), span, hint: None }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Problem {
            kind: ErrorKind::InvalidValue,
            severity: Severity::Warning,
            message: message.into(),
            span,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Places the problem in `src`, computing line and column.
    pub fn locate(self, src: &str) -> Diagnostic {
        let (line, col) = line_col(src, self.span.start);
        Diagnostic {
            kind: self.kind,
            severity: self.severity,
            message: self.message,
            span: self.span,
            line,
            col,
            hint: self.hint,
        }
    }
}

/// 1-based line and character column of a byte offset (clamped to the text).
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// The closest candidate by edit distance, when it is close enough to be a
/// plausible typo ("did you mean").
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1) + 1;
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let src = "a = 'é'\n  AND b";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, src.find("AND").unwrap()), (2, 3));
        assert_eq!(line_col(src, 7), (1, 7)); // after the two-byte é
        assert_eq!(line_col(src, 10_000), (2, 8));
    }

    #[test]
    fn suggestions_pick_the_nearest_plausible_name() {
        let names = ["country", "company_id", "created_at"];
        assert_eq!(suggest("contry", names), Some("country"));
        assert_eq!(suggest("created", names), Some("created_at"));
        assert_eq!(suggest("zzz", names), None);
    }
}
