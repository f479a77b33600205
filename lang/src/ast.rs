//! The syntax tree of a segment definition.
//!
//! Its serde form is the documented JSON of SPEC §4 (see README, "JSON syntax
//! tree"): UI filter builders produce it, so field names are part of the
//! contract. Spans are optional on input (a builder has no text to point into)
//! and always present on output.

use serde::{Deserialize, Serialize};

use crate::error::Span;

fn is_false(b: &bool) -> bool {
    !*b
}

/// A number's text from a JSON string or a JSON number. The text is validated
/// later, when the tree is formatted and parsed back.
fn number_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        String(String),
        Number(serde_json::Number),
    }
    Ok(match Text::deserialize(d)? {
        Text::String(s) => s,
        Text::Number(n) => n.to_string(),
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Expr {
    And {
        #[serde(default)]
        span: Span,
        args: Vec<Expr>,
    },
    Or {
        #[serde(default)]
        span: Span,
        args: Vec<Expr>,
    },
    Not {
        #[serde(default)]
        span: Span,
        arg: Box<Expr>,
    },
    /// `operand test`, e.g. `country IN ('DE','AT')`, or a bare boolean field.
    Condition {
        #[serde(default)]
        span: Span,
        operand: Operand,
        test: Test,
    },
    /// `ANY rel (filter)` (`negated`: `NO rel (filter)`).
    Exists {
        #[serde(default)]
        span: Span,
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
        relation: Name,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Box<Expr>>,
    },
    /// `IN SEGMENT 'name'`.
    InSegment {
        #[serde(default)]
        span: Span,
        segment: String,
    },
}

impl Expr {
    /// The `MATCHES` patterns in the tree, with their spans: the regex dialect
    /// is PostgreSQL's, so only the server can validate them.
    pub fn regexes(&self) -> Vec<(&str, Span)> {
        fn walk<'e>(e: &'e Expr, out: &mut Vec<(&'e str, Span)>) {
            match e {
                Expr::And { args, .. } | Expr::Or { args, .. } => args.iter().for_each(|a| walk(a, out)),
                Expr::Not { arg, .. } => walk(arg, out),
                Expr::Exists { filter, .. } => filter.iter().for_each(|f| walk(f, out)),
                Expr::InSegment { .. } => {}
                Expr::Condition { operand, test, .. } => {
                    if let Operand::Aggregate { filter: Some(f), .. } = operand {
                        walk(f, out);
                    }
                    if let Test::Text { text_op: TextOp::Matches, value: Value::String { value, span }, .. } = test {
                        out.push((value, *span));
                    }
                }
            }
        }
        let mut out = vec![];
        walk(self, &mut out);
        out
    }

    /// Points `IN SEGMENT` references to `old` (case-insensitive) at `new`.
    pub fn rename_segment(&mut self, old: &str, new: &str) {
        match self {
            Expr::And { args, .. } | Expr::Or { args, .. } => args.iter_mut().for_each(|a| a.rename_segment(old, new)),
            Expr::Not { arg, .. } => arg.rename_segment(old, new),
            Expr::InSegment { segment, .. } if segment.to_lowercase() == old.to_lowercase() => *segment = new.to_string(),
            Expr::InSegment { .. } | Expr::Condition { .. } | Expr::Exists { .. } => {}
        }
    }

    pub fn span(&self) -> Span {
        match self {
            Expr::And { span, .. }
            | Expr::Or { span, .. }
            | Expr::Not { span, .. }
            | Expr::Condition { span, .. }
            | Expr::Exists { span, .. }
            | Expr::InSegment { span, .. } => *span,
        }
    }
}

/// An identifier after folding: what PostgreSQL would call the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Name {
    #[serde(default)]
    pub span: Span,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

impl AggFunc {
    pub const ALL: [AggFunc; 5] = [AggFunc::Count, AggFunc::Sum, AggFunc::Min, AggFunc::Max, AggFunc::Avg];

    pub fn keyword(self) -> &'static str {
        match self {
            AggFunc::Count => "COUNT",
            AggFunc::Sum => "SUM",
            AggFunc::Min => "MIN",
            AggFunc::Max => "MAX",
            AggFunc::Avg => "AVG",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operand {
    /// `a`, `a.b`, `a.b.c`: a column, a lookup's column, or a jsonb path.
    /// Which one is decided by the type checker, which knows the catalog.
    Field {
        #[serde(default)]
        span: Span,
        path: Vec<Name>,
    },
    /// `COUNT rel (filter)` or `SUM rel.column (filter)`.
    Aggregate {
        #[serde(default)]
        span: Span,
        func: AggFunc,
        relation: Name,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        column: Option<Name>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Box<Expr>>,
    },
}

impl Operand {
    pub fn span(&self) -> Span {
        match self {
            Operand::Field { span, .. } | Operand::Aggregate { span, .. } => *span,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Cmp {
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// Word operators that take one value and may be preceded by `NOT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
    Like,
    Ilike,
    Matches,
}

impl TextOp {
    pub fn keyword(self) -> &'static str {
        match self {
            TextOp::Contains => "CONTAINS",
            TextOp::StartsWith => "STARTS WITH",
            TextOp::EndsWith => "ENDS WITH",
            TextOp::Like => "LIKE",
            TextOp::Ilike => "ILIKE",
            TextOp::Matches => "MATCHES",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantifier {
    Any,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// `WITHIN LAST d`: `[now - d, now]`.
    Last,
    /// `WITHIN NEXT d`: `[now, now + d]`.
    Next,
    /// `OLDER THAN d`: `< now - d`.
    OlderThan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Moment {
    Before,
    After,
}

/// What is asserted about the operand. `negated` is the written `NOT`
/// (`NOT IN`, `NOT CONTAINS`, `IS NOT NULL`…): the exact complement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Test {
    /// `= != < <= > >=`; `!=` is `NOT (=)`.
    Compare { cmp: Cmp, value: Value },
    In {
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
        values: Vec<Value>,
    },
    Between {
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
        low: Value,
        high: Value,
    },
    IsNull {
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
    },
    IsEmpty {
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
    },
    Text {
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
        text_op: TextOp,
        value: Value,
    },
    /// `CONTAINS ANY (…)` / `CONTAINS ALL (…)`.
    ContainsSet {
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
        quantifier: Quantifier,
        values: Vec<Value>,
    },
    Window {
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
        window: Window,
        duration: Duration,
    },
    Moment {
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
        moment: Moment,
        value: Value,
    },
    /// A bare boolean field: `is_vip`.
    IsTrue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Unit {
    /// Accepts the long forms (singular and plural) and the short ones.
    pub fn parse(word: &str) -> Option<Unit> {
        Some(match word {
            "second" | "seconds" | "sec" | "secs" | "s" => Unit::Second,
            "minute" | "minutes" | "min" | "mins" => Unit::Minute,
            "hour" | "hours" | "h" => Unit::Hour,
            "day" | "days" | "d" => Unit::Day,
            "week" | "weeks" | "w" => Unit::Week,
            "month" | "months" | "mo" => Unit::Month,
            "year" | "years" | "y" => Unit::Year,
            _ => return None,
        })
    }

    pub fn word(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Year => "year",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Duration {
    #[serde(default)]
    pub span: Span,
    pub amount: u32,
    pub unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Instant {
    Now,
    Today,
    Yesterday,
    Tomorrow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Value {
    String {
        #[serde(default)]
        span: Span,
        value: String,
    },
    /// Exact decimal text (`"5000"`, `"-2.5"`), so no precision is lost; a
    /// JSON number is accepted on input too.
    Number {
        #[serde(default)]
        span: Span,
        #[serde(deserialize_with = "number_text")]
        value: String,
    },
    Boolean {
        #[serde(default)]
        span: Span,
        value: bool,
    },
    /// `YYYY-MM-DD`.
    Date {
        #[serde(default)]
        span: Span,
        value: String,
    },
    /// ISO 8601 timestamp, e.g. `2026-05-01T10:00:00Z`.
    Timestamp {
        #[serde(default)]
        span: Span,
        value: String,
    },
    Instant {
        #[serde(default)]
        span: Span,
        instant: Instant,
    },
    /// `7 days ago` (`past`), `in 2 weeks`; also `-7d` / `+2w`.
    Relative {
        #[serde(default)]
        span: Span,
        past: bool,
        duration: Duration,
    },
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::String { span, .. }
            | Value::Number { span, .. }
            | Value::Boolean { span, .. }
            | Value::Date { span, .. }
            | Value::Timestamp { span, .. }
            | Value::Instant { span, .. }
            | Value::Relative { span, .. } => *span,
        }
    }

    /// What kind of value this is, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::String { .. } => "a string",
            Value::Number { .. } => "a number",
            Value::Boolean { .. } => "a boolean",
            Value::Date { .. } => "a date",
            Value::Timestamp { .. } => "a timestamp",
            Value::Instant { .. } | Value::Relative { .. } => "a point in time",
        }
    }

    pub fn is_time(&self) -> bool {
        matches!(self, Value::Date { .. } | Value::Timestamp { .. } | Value::Instant { .. } | Value::Relative { .. })
    }
}

/// How deeply a syntax tree's JSON may nest: well above what any definition
/// the parser accepts produces, and shallow enough to read without danger to
/// the stack. A tree between serde_json's own limit (128) and this one is
/// read, and its text then refused by the parser's depth limit (54001), as
/// a deeper tree is here.
pub const MAX_TREE_NESTING: usize = 256;

/// How deeply `json` nests (arrays and objects), read without parsing it.
pub fn json_nesting(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for c in json.bytes() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A syntax tree from its JSON, nested at most `MAX_TREE_NESTING` deep.
pub fn from_json(json: &str) -> Result<Expr, TreeError> {
    let nesting = json_nesting(json);
    if nesting > MAX_TREE_NESTING {
        return Err(TreeError::TooDeep(nesting));
    }
    let mut de = serde_json::Deserializer::from_str(json);
    de.disable_recursion_limit();
    let expr = <Expr as serde::Deserialize>::deserialize(&mut de).map_err(|e| TreeError::Invalid(e.to_string()))?;
    de.end().map_err(|e| TreeError::Invalid(e.to_string()))?;
    Ok(expr)
}

/// Why `from_json` refused a tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("syntax tree nests {0} levels deep, more than {MAX_TREE_NESTING}")]
    TooDeep(usize),
    #[error("not a segment syntax tree: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tree_tests {
    use super::*;

    #[test]
    fn trees_of_definitions_at_the_parser_limit_read_back() {
        // The deepest nesting of NOT ( … ) the parser accepts.
        let expr = (1..=crate::parser::MAX_DEPTH)
            .rev()
            .find_map(|k| crate::parser::parse(&format!("{}score > 1{}", "NOT (".repeat(k), ")".repeat(k))).ok())
            .unwrap();
        let json = serde_json::to_string(&expr).unwrap();
        assert!(json_nesting(&json) <= MAX_TREE_NESTING);
        assert_eq!(from_json(&json).unwrap(), expr);
    }

    #[test]
    fn trees_deeper_than_serde_json_allows_read_back() {
        let leaf = crate::parser::parse("score > 1").unwrap();
        let json = serde_json::to_string(&leaf).unwrap();
        let deep = format!("{}{json}{}", r#"{"type":"not","arg":"#.repeat(150), "}".repeat(150));
        assert!(json_nesting(&deep) > 128);
        assert!(serde_json::from_str::<Expr>(&deep).is_err(), "serde_json's default limit");
        let expr = from_json(&deep).unwrap();
        assert!(crate::format::format(&expr).starts_with("NOT NOT"));
    }

    #[test]
    fn deeper_or_broken_trees_are_errors() {
        let deep = format!("{}{}", "[".repeat(MAX_TREE_NESTING + 1), "]".repeat(MAX_TREE_NESTING + 1));
        assert_eq!(from_json(&deep), Err(TreeError::TooDeep(MAX_TREE_NESTING + 1)));
        assert!(matches!(from_json(r#"{"type":"nonsense"}"#), Err(TreeError::Invalid(_))));
        assert_eq!(json_nesting(r#"{"a":"[[[{"}"#), 1);
    }
}
