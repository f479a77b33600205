//! SQL generation from a checked predicate.
//!
//! Safety by construction: identifiers come from the catalog and are always
//! quoted; values are rendered as literals that mean the same under any
//! `standard_conforming_strings`; every operator is written
//! `OPERATOR(pg_catalog.x)` and every function `pg_catalog.f`, and constructs
//! that would look an operator up through `search_path` (`IN (…)`, `BETWEEN`,
//! simple `CASE`) are never emitted.
//!
//! Two-valued logic: atoms may evaluate to NULL, which a WHERE clause treats as
//! false. Only `NOT` could turn that NULL into the wrong answer, so `NOT p` is
//! written `NOT COALESCE(p, false)` whenever `p` can be NULL. The result is a
//! WHERE predicate whose NULL means false; `boolean()` gives a value that is
//! never NULL.

use crate::ast::{AggFunc, Cmp, Instant, Moment, Quantifier, Test, TextOp, Unit, Value, Window};
use crate::model::{Column, Relation, Table, Ty};
use crate::typecheck::{OperandKind, Pred, Typed};

/// `"name"` with embedded quotes doubled.
pub fn ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    push_ident(&mut out, name);
    out
}

fn push_ident(out: &mut String, name: &str) {
    out.push('"');
    for part in name.split_inclusive('"') {
        out.push_str(part);
        if part.ends_with('"') {
            out.push('"');
        }
    }
    out.push('"');
}

pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A string literal that reads the same with `standard_conforming_strings`
/// on or off: backslashes force the `E''` form, where they are escaped.
pub fn literal(s: &str) -> String {
    let quoted = s.replace('\'', "''");
    if s.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// `OPERATOR(pg_catalog.x)`, spelled out at compile time: the generator
/// writes one for nearly every condition.
macro_rules! op {
    ($sym:literal) => {
        concat!("OPERATOR(pg_catalog.", $sym, ")")
    };
}

/// The predicate for a WHERE clause, with `row` the (quoted) alias or table
/// name of the source row.
pub fn predicate(p: &Pred, row: &str, key: &str) -> String {
    let mut g = Gen { aliases: 0, source_row: row.to_string(), key: key.to_string() };
    g.pred(p, row)
}

/// The predicate as a value that is never NULL.
pub fn boolean(p: &Pred, row: &str, key: &str) -> String {
    let sql = predicate(p, row, key);
    if may_be_null(p) {
        format!("COALESCE({sql}, false)")
    } else {
        sql
    }
}

/// When a row of the relation named `relation` can change what `p` says of
/// the row's contact now: a condition over that row (`row`, the quoted
/// alias), true when the row passes the filter of some `ANY`, `NO` or
/// aggregate over the relation. A row that passes none of them is invisible
/// to `p` at this moment, however it was written. `false` when `p` does not
/// read the relation. What an inserted row (or an updated row's new image)
/// can change.
pub fn relevance(p: &Pred, relation: &str, row: &str, key: &str) -> String {
    relevance_with(p, relation, row, key, Moments::Now)
}

/// `relevance` at any moment since the last sweep: what a deleted row (or an
/// updated row's old image) can have changed. A stored membership is that of
/// the last sweep or write, not of now: a row that passed a filter then
/// and has since aged out of it (`at WITHIN LAST 3 days`) may still hold its
/// contact in the segment, and once the row is gone no sweep finds the
/// contact. Every condition on the clock is taken as passed, whichever way
/// it is negated.
pub fn relevance_lately(p: &Pred, relation: &str, row: &str, key: &str) -> String {
    relevance_with(p, relation, row, key, Moments::SinceSweep)
}

/// Which moments `relevance` looks at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Moments {
    Now,
    SinceSweep,
}

fn relevance_with(p: &Pred, relation: &str, row: &str, key: &str, moments: Moments) -> String {
    fn walk<'p>(p: &'p Pred, relation: &str, out: &mut Vec<Option<&'p Pred>>) {
        match p {
            Pred::And(a) | Pred::Or(a) => a.iter().for_each(|x| walk(x, relation, out)),
            Pred::Not(x) => walk(x, relation, out),
            Pred::InSegment(_) => {}
            Pred::Exists { relation: rel, filter, .. } if rel.name == relation => out.push(filter.as_deref()),
            Pred::Exists { .. } => {}
            Pred::Test { operand, .. } => match &operand.kind {
                OperandKind::Aggregate { relation: rel, filter, .. } if rel.name == relation => out.push(filter.as_deref()),
                _ => {}
            },
        }
    }
    let mut filters = vec![];
    walk(p, relation, &mut filters);
    if filters.is_empty() {
        return "false".into();
    }
    if filters.iter().any(Option::is_none) {
        return "true".into();
    }
    let mut g = Gen { aliases: 0, source_row: row.to_string(), key: key.to_string() };
    let parts: Vec<String> = filters
        .into_iter()
        .flatten()
        .map(|f| match moments {
            Moments::Now => g.pred(f, row),
            Moments::SinceSweep => g.at_any_moment(f, row, true),
        })
        .collect();
    format!("({})", parts.join(" OR "))
}

/// What `p` says of a contact once a row of the relation named `relation`
/// that passes `relevance` has been inserted for it, if that alone decides
/// it: `Some(true)` when `p` is `ANY relation (…)` or a count of it that is
/// at least one, `Some(false)` when it is `NO relation (…)` or a count of
/// zero, the negation of either the other way round. Inserting rows only
/// adds to what these count, so no query has to tell.
pub fn insert_decides(p: &Pred, relation: &str) -> Option<bool> {
    match p {
        Pred::Not(inner) => insert_decides(inner, relation).map(|member| !member),
        Pred::Exists { negated, relation: rel, .. } if rel.name == relation => Some(!negated),
        Pred::Test { operand, test: Test::Compare { cmp, value: Value::Number { value, .. } } } => {
            let OperandKind::Aggregate { func: AggFunc::Count, relation: rel, .. } = &operand.kind else { return None };
            // A whole number written without sign, point or exponent: other
            // texts are not worth comparing exactly with a count.
            if rel.name != relation || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n = value.trim_start_matches('0');
            let (zero, one) = (n.is_empty(), n == "1");
            match cmp {
                Cmp::Ge if one => Some(true),
                Cmp::Gt | Cmp::Ne if zero => Some(true),
                Cmp::Lt if one => Some(false),
                Cmp::Le | Cmp::Eq if zero => Some(false),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether the SQL of `p` can evaluate to NULL.
fn may_be_null(p: &Pred) -> bool {
    match p {
        Pred::And(a) | Pred::Or(a) => a.iter().any(may_be_null),
        Pred::Not(_) | Pred::Exists { .. } | Pred::InSegment(_) => false,
        Pred::Test { operand, test } => match test {
            Test::IsNull { .. } | Test::IsEmpty { .. } => false,
            _ => operand.nullable,
        },
    }
}

struct Gen {
    aliases: usize,
    source_row: String,
    key: String,
}

impl Gen {
    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        ident(&format!("_seg_{prefix}{}", self.aliases))
    }

    /// `FROM <relation> AS <r> WHERE <r>.<contact> = <source row>.<key>`,
    /// and the related row's `filter`: the rows of a contact that `ANY`,
    /// `NO`, `COUNT` and the aggregates read.
    fn related(&mut self, relation: &Relation, r: &str, filter: Option<&Pred>) -> String {
        let mut sql = format!(
            "FROM {} AS {r} WHERE {r}.{} {} {}.{}",
            qualified(&relation.table.schema, &relation.table.name),
            ident(&relation.contact_column),
            op!("="),
            self.source_row,
            ident(&self.key),
        );
        if let Some(f) = filter {
            sql.push_str(&format!(" AND ({})", self.pred(f, r)));
        }
        sql
    }

    fn pred(&mut self, p: &Pred, row: &str) -> String {
        match p {
            Pred::And(args) => self.join(args, " AND ", row),
            Pred::Or(args) => self.join(args, " OR ", row),
            Pred::Not(inner) => negate(&self.pred(inner, row), may_be_null(inner)),
            Pred::Test { operand, test } => self.test(operand, test, row),
            Pred::Exists { negated, relation, filter } => {
                let r = self.alias("r");
                let sql = format!("EXISTS (SELECT 1 {})", self.related(relation, &r, filter.as_deref()));
                if *negated {
                    format!("NOT {sql}")
                } else {
                    sql
                }
            }
            // OFFSET 0 keeps this a probe of the membership's primary key per
            // row: as a semi-join, the planner would trust statistics taken
            // before the referenced segment was (re)filled in this very
            // transaction and may rescan the other side for every member.
            Pred::InSegment(s) => {
                let m = self.alias("m");
                format!(
                    "EXISTS (SELECT 1 FROM {} AS {m} WHERE {m}.\"segment_id\" {} {} AND {m}.{} {} {}.{} OFFSET 0)",
                    qualified(&s.membership_schema, &s.membership_table),
                    op!("="),
                    s.id,
                    ident(&s.key_column),
                    op!("="),
                    self.source_row,
                    ident(&self.key),
                )
            }
        }
    }

    /// A condition that holds whenever `p` holds (`holds`), or fails to
    /// hold (`!holds`), at some moment: `p` with its negations pushed down
    /// to the tests, "not true" as `pred` renders NOT, and every test on
    /// the clock, negated or not, taken as true.
    fn at_any_moment(&mut self, p: &Pred, row: &str, holds: bool) -> String {
        let each = |g: &mut Self, args: &[Pred], sep: &str| {
            let parts: Vec<String> = args.iter().map(|a| g.at_any_moment(a, row, holds)).collect();
            format!("({})", parts.join(sep))
        };
        match p {
            Pred::And(args) => each(self, args, if holds { " AND " } else { " OR " }),
            Pred::Or(args) => each(self, args, if holds { " OR " } else { " AND " }),
            Pred::Not(inner) => self.at_any_moment(inner, row, !holds),
            Pred::Test { test, .. } if !boundaries(test).is_empty() => "true".into(),
            _ if holds => self.pred(p, row),
            _ => negate(&self.pred(p, row), may_be_null(p)),
        }
    }

    fn join(&mut self, args: &[Pred], sep: &str, row: &str) -> String {
        let mut out = String::from("(");
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(&self.pred(a, row));
        }
        out.push(')');
        out
    }

    /// SQL of an operand, in its own type.
    fn operand(&mut self, o: &Typed, row: &str) -> String {
        match &o.kind {
            OperandKind::Column(c) => {
                let mut out = String::with_capacity(row.len() + c.name.len() + 3);
                out.push_str(row);
                out.push('.');
                push_ident(&mut out, &c.name);
                out
            }
            // LIMIT 1: the target key is unique, but a REPEATABLE READ
            // snapshot can show two versions of one key (a row deleted after
            // the snapshot and the transaction's own insert of the key), and
            // "more than one row returned" would fail the user's write; what
            // the snapshot misses is caught by comparing with the latest one.
            OperandKind::LookupColumn { lookup, column } => {
                let l = self.alias("l");
                format!(
                    "(SELECT {l}.{} FROM {} AS {l} WHERE {l}.{} {} {}.{} LIMIT 1)",
                    ident(&column.name),
                    qualified(&lookup.target.schema, &lookup.target.name),
                    ident(&lookup.target_key),
                    op!("="),
                    self.source_row,
                    ident(&lookup.via_column),
                )
            }
            OperandKind::JsonPath { base, path } => {
                let keys: Vec<String> = path.iter().map(|k| literal(k)).collect();
                format!("({} {} ARRAY[{}]::pg_catalog.text[])", self.operand(base, row), op!("#>"), keys.join(", "))
            }
            OperandKind::Aggregate { func, relation, column, filter } => {
                let r = self.alias("r");
                let value = match (func, column) {
                    (AggFunc::Count, _) => "pg_catalog.count(*)".to_string(),
                    (f, Some(c)) => format!("pg_catalog.{}({r}.{})", f.keyword().to_lowercase(), ident(&c.name)),
                    (_, None) => unreachable!("checked: SUM/MIN/MAX/AVG have a column"),
                };
                format!("(SELECT {value} {})", self.related(relation, &r, filter.as_deref()))
            }
        }
    }

    fn test(&mut self, o: &Typed, t: &Test, row: &str) -> String {
        let v = self.operand(o, row);
        let ty = &o.ty;
        let (positive, negated) = match t {
            Test::Compare { cmp: Cmp::Ne, value } => (compare(&v, ty, o, Cmp::Eq, value), true),
            Test::Compare { cmp, value } => (compare(&v, ty, o, *cmp, value), false),
            Test::In { negated, values } => (in_list(&v, ty, o, values), *negated),
            Test::Between { negated, low, high } => {
                let lo = compare(&v, ty, o, Cmp::Ge, low);
                let hi = compare(&v, ty, o, Cmp::Le, high);
                (format!("({lo} AND {hi})"), *negated)
            }
            Test::IsNull { negated } => {
                return match (ty, negated) {
                    (Ty::Jsonb, _) => {
                        let sql = format!("({v} IS NULL OR {v} {} 'null'::pg_catalog.jsonb)", op!("="));
                        if *negated { format!("NOT {sql}") } else { sql }
                    }
                    (_, false) => format!("{v} IS NULL"),
                    (_, true) => format!("{v} IS NOT NULL"),
                };
            }
            Test::IsEmpty { negated } => {
                let sql = is_empty(&v, ty);
                return if *negated { format!("NOT ({sql})") } else { sql };
            }
            Test::Text { negated, text_op, value } => (text_test(&v, o, *text_op, value), *negated),
            Test::ContainsSet { negated, quantifier, values } => (contains_set(&v, o, *quantifier, values), *negated),
            Test::Window { negated, window, duration } => {
                let clock = Clock::of(ty);
                let now = instant(Instant::Now, clock);
                let past = relative(true, duration.amount, duration.unit, clock);
                let future = relative(false, duration.amount, duration.unit, clock);
                let sql = match window {
                    Window::Last => format!("({v} {} {past} AND {v} {} {now})", op!(">="), op!("<=")),
                    Window::Next => format!("({v} {} {now} AND {v} {} {future})", op!(">="), op!("<=")),
                    Window::OlderThan => format!("{v} {} {past}", op!("<")),
                };
                (sql, *negated)
            }
            Test::Moment { negated, moment, value } => {
                let cmp = if *moment == Moment::Before { Cmp::Lt } else { Cmp::Gt };
                (compare(&v, ty, o, cmp, value), *negated)
            }
            Test::IsTrue => {
                if *ty == Ty::Jsonb {
                    (format!("{v} {} 'true'::pg_catalog.jsonb", op!("=")), false)
                } else {
                    (v, false)
                }
            }
        };
        if negated {
            negate(&positive, o.nullable)
        } else {
            positive
        }
    }
}

fn negate(sql: &str, nullable: bool) -> String {
    if nullable {
        format!("NOT COALESCE({sql}, false)")
    } else {
        format!("NOT ({sql})")
    }
}

fn cmp_op(c: Cmp) -> &'static str {
    match c {
        Cmp::Eq => op!("="),
        Cmp::Ne => op!("<>"),
        Cmp::Lt => op!("<"),
        Cmp::Le => op!("<="),
        Cmp::Gt => op!(">"),
        Cmp::Ge => op!(">="),
    }
}

/// `v cmp value` for an operand of type `ty`.
fn compare(v: &str, ty: &Ty, o: &Typed, c: Cmp, value: &Value) -> String {
    if *ty == Ty::Jsonb {
        return match (c, value) {
            (Cmp::Eq, _) => format!("{v} {} {}", op!("="), json_literal(value)),
            (_, Value::Number { .. }) => format!("{} {} {}", json_as_number(v), cmp_op(c), render(value, &Ty::Numeric, None)),
            _ => format!("{} {} {}", json_as_text(v), cmp_op(c), render(value, &Ty::Text, None)),
        };
    }
    format!("{v} {} {}", cmp_op(c), render(value, ty, column_of(o)))
}

fn in_list(v: &str, ty: &Ty, o: &Typed, values: &[Value]) -> String {
    let (items, array_type) = match ty {
        Ty::Jsonb => (values.iter().map(json_literal).collect::<Vec<_>>(), "pg_catalog.jsonb[]".to_string()),
        Ty::Integer | Ty::Numeric => (values.iter().map(|x| render(x, ty, None)).collect(), "pg_catalog.numeric[]".into()),
        _ => {
            let items = values.iter().map(|x| render(x, ty, column_of(o))).collect();
            (items, format!("{}[]", sql_type(ty, column_of(o))))
        }
    };
    format!("{v} {} ANY (ARRAY[{}]::{array_type})", op!("="), items.join(", "))
}

fn is_empty(v: &str, ty: &Ty) -> String {
    match ty {
        Ty::Text => format!("({v} IS NULL OR {v} {} ''::pg_catalog.text)", op!("=")),
        Ty::Array(_) => format!("({v} IS NULL OR pg_catalog.cardinality({v}) {} 0)", op!("=")),
        Ty::Jsonb => format!(
            "({v} IS NULL OR {v} {} ANY (ARRAY['null', '\"\"', '[]', '{{}}']::pg_catalog.jsonb[]))",
            op!("=")
        ),
        _ => format!("{v} IS NULL"),
    }
}

/// `pattern` for ILIKE that matches `s` literally, with `%` around as asked.
fn like_pattern(s: &str, prefix: bool, suffix: bool) -> String {
    let escaped = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("{}{escaped}{}", if prefix { "%" } else { "" }, if suffix { "%" } else { "" })
}

fn text_test(v: &str, o: &Typed, text_op: TextOp, value: &Value) -> String {
    let text = match value {
        Value::String { value, .. } => value.as_str(),
        _ => "",
    };
    match (&o.ty, text_op) {
        (Ty::Array(_), TextOp::Contains) => {
            let elem = render(value, element(&o.ty), None);
            format!("{v} {} ARRAY[{elem}]::{}", op!("@>"), sql_type(&o.ty, column_of(o)))
        }
        (Ty::Jsonb, TextOp::Contains) => {
            let array = format!("{v} {} {}", op!("@>"), json_array(std::slice::from_ref(value)));
            match value {
                Value::String { .. } => {
                    let pattern = literal(&like_pattern(text, true, true));
                    format!("({array} OR {} {} {pattern})", json_as_text(v), op!("~~*"))
                }
                _ => array,
            }
        }
        _ => {
            let subject = match &o.ty {
                // Patterns and substrings are matched under the database's
                // default collation: PostgreSQL refuses them under a
                // nondeterministic one, and would fail every later write.
                Ty::Text if column_of(o).is_some_and(|c| c.nondeterministic) => {
                    format!("({v} COLLATE pg_catalog.\"default\")")
                }
                Ty::Text => v.to_string(),
                Ty::Jsonb => json_as_text(v),
                _ => format!("({v})::pg_catalog.text"),
            };
            let (operator, pattern) = match text_op {
                TextOp::Contains => (op!("~~*"), like_pattern(text, true, true)),
                TextOp::StartsWith => (op!("~~*"), like_pattern(text, false, true)),
                TextOp::EndsWith => (op!("~~*"), like_pattern(text, true, false)),
                TextOp::Like => (op!("~~"), text.to_string()),
                TextOp::Ilike => (op!("~~*"), text.to_string()),
                TextOp::Matches => (op!("~"), text.to_string()),
            };
            format!("{subject} {operator} {}", literal(&pattern))
        }
    }
}

fn contains_set(v: &str, o: &Typed, q: Quantifier, values: &[Value]) -> String {
    if o.ty == Ty::Jsonb {
        return match q {
            Quantifier::All => format!("{v} {} {}", op!("@>"), json_array(values)),
            Quantifier::Any => {
                let parts: Vec<String> =
                    values.iter().map(|x| format!("{v} {} {}", op!("@>"), json_array(std::slice::from_ref(x)))).collect();
                format!("({})", parts.join(" OR "))
            }
        };
    }
    let items: Vec<String> = values.iter().map(|x| render(x, element(&o.ty), None)).collect();
    let operator = if q == Quantifier::All { op!("@>") } else { op!("&&") };
    format!("{v} {operator} ARRAY[{}]::{}", items.join(", "), sql_type(&o.ty, column_of(o)))
}

fn element(ty: &Ty) -> &Ty {
    match ty {
        Ty::Array(e) => e,
        other => other,
    }
}

/// The column whose declared type literals are cast to, when the operand is one.
fn column_of(o: &Typed) -> Option<&Column> {
    match &o.kind {
        OperandKind::Column(c) | OperandKind::LookupColumn { column: c, .. } => Some(c),
        OperandKind::JsonPath { .. } | OperandKind::Aggregate { .. } => None,
    }
}

/// The SQL type name for casts: the column's own, or the type's canonical one.
fn sql_type(ty: &Ty, column: Option<&Column>) -> String {
    if let Some(c) = column {
        return c.sql_type.clone();
    }
    match ty {
        Ty::Integer | Ty::Numeric => "pg_catalog.numeric",
        Ty::Bool => "pg_catalog.bool",
        Ty::Date => "pg_catalog.date",
        Ty::Timestamp => "pg_catalog.timestamp",
        Ty::TimestampTz => "pg_catalog.timestamptz",
        Ty::Uuid => "pg_catalog.uuid",
        Ty::Jsonb => "pg_catalog.jsonb",
        _ => "pg_catalog.text",
    }
    .to_string()
}

/// A value as a literal of the operand's type.
fn render(value: &Value, ty: &Ty, column: Option<&Column>) -> String {
    let clock = Clock::of(ty);
    match value {
        Value::String { value, .. } => match ty {
            Ty::Text => format!("{}::pg_catalog.text", literal(value)),
            _ => format!("{}::{}", literal(value), sql_type(ty, column).trim_end_matches("[]")),
        },
        // Checked by the lexer: -?digits(.digits)?, so safe as is. A leading
        // minus is folded into the constant by the SQL grammar, not looked up.
        Value::Number { value, .. } => value.clone(),
        Value::Boolean { value, .. } => value.to_string(),
        // A day begins at midnight in `ZONE`, for absolute moments too.
        Value::Date { value, .. } if clock == Clock::Absolute => absolute(&format!("{}::pg_catalog.timestamp", literal(value))),
        Value::Date { value, .. } => format!("{}::pg_catalog.date", literal(value)),
        Value::Timestamp { value, .. } => timestamp_literal(value, clock),
        Value::Instant { instant: i, .. } => instant(*i, clock),
        Value::Relative { past, duration, .. } => relative(*past, duration.amount, duration.unit, clock),
    }
}

const NOW: &str = "pg_catalog.now()";

/// The time zone in which `today`, dates and calendar units are read,
/// whatever the writing session's `TimeZone` (a pooler or the background
/// worker makes that arbitrary). One fixed zone until segments have their
/// own (the time issue).
pub const ZONE: &str = "UTC";

/// How an operand's type holds time: what a moment is rendered as for it.
#[derive(Clone, Copy, PartialEq)]
enum Clock {
    /// `date`: the calendar day in `ZONE`.
    Date,
    /// `timestamp`: the wall-clock time in `ZONE`.
    Wall,
    /// `timestamptz` (and anything else): an absolute moment.
    Absolute,
}

impl Clock {
    fn of(ty: &Ty) -> Clock {
        match ty {
            Ty::Date => Clock::Date,
            Ty::Timestamp => Clock::Wall,
            _ => Clock::Absolute,
        }
    }
}

/// The wall-clock time in `ZONE` of the timestamptz `at`.
fn wall(at: &str) -> String {
    format!("pg_catalog.timezone({}, {at})", literal(ZONE))
}

/// The absolute moment of the wall-clock time `at` (a timestamp) in `ZONE`.
fn absolute(at: &str) -> String {
    format!("pg_catalog.timezone({}, {at})", literal(ZONE))
}

/// A wall-clock timestamp in `ZONE` as the operand's clock holds it.
fn from_wall(at: String, clock: Clock) -> String {
    match clock {
        Clock::Date => format!("({at})::pg_catalog.date"),
        Clock::Wall => at,
        Clock::Absolute => absolute(&at),
    }
}

/// `now`, `today`… for an operand of `clock`, at the moment `now` (an SQL
/// expression: `pg_catalog.now()`, or a sweep's bound); days begin at
/// midnight in `ZONE`.
fn instant_at(i: Instant, clock: Clock, now: &str) -> String {
    let days = match i {
        Instant::Now => return if clock == Clock::Absolute { now.into() } else { from_wall(wall(now), clock) },
        Instant::Today => 0,
        Instant::Yesterday => -1,
        Instant::Tomorrow => 1,
    };
    let midnight = format!("pg_catalog.date_trunc('day', {})", wall(now));
    let day = match days {
        0 => midnight,
        d => format!("({midnight} {} '1 day'::pg_catalog.interval)", if d < 0 { op!("-") } else { op!("+") }),
    };
    from_wall(day, clock)
}

fn instant(i: Instant, clock: Clock) -> String {
    instant_at(i, clock, NOW)
}

/// `now ± amount unit` at the moment `now` for an operand of `clock`: days,
/// weeks, months and years are calendar units of `ZONE`, shorter units
/// absolute durations.
fn relative_at(past: bool, amount: u32, unit: Unit, clock: Clock, now: &str) -> String {
    let plural = if amount == 1 { "" } else { "s" };
    let interval = format!("'{amount} {}{plural}'::pg_catalog.interval", unit.word());
    let sign = if past { op!("-") } else { op!("+") };
    let calendar = matches!(unit, Unit::Day | Unit::Week | Unit::Month | Unit::Year);
    if clock == Clock::Absolute && !calendar {
        return format!("({now} {sign} {interval})");
    }
    from_wall(format!("({} {sign} {interval})", wall(now)), clock)
}

fn relative(past: bool, amount: u32, unit: Unit, clock: Clock) -> String {
    relative_at(past, amount, unit, clock, NOW)
}

/// A timestamp literal for an operand of `clock`: one without an offset is
/// a wall-clock time in `ZONE`.
fn timestamp_literal(value: &str, clock: Clock) -> String {
    let offset = value.get(10..).is_some_and(|time| time.contains(['+', '-', 'Z', 'z']));
    if offset {
        let at = format!("{}::pg_catalog.timestamptz", literal(value));
        if clock == Clock::Absolute { at } else { from_wall(wall(&at), clock) }
    } else {
        from_wall(format!("{}::pg_catalog.timestamp", literal(value)), clock)
    }
}

/// A moment a condition compares with that moves as time passes.
#[derive(Clone, Copy)]
enum Boundary {
    Instant(Instant),
    Relative { past: bool, amount: u32, unit: Unit },
}

impl Boundary {
    fn at(self, clock: Clock, now: &str) -> String {
        match self {
            Boundary::Instant(i) => instant_at(i, clock, now),
            Boundary::Relative { past, amount, unit } => relative_at(past, amount, unit, clock, now),
        }
    }
}

/// The moving boundaries of a test (none: its truth does not depend on time).
fn boundaries(t: &Test) -> Vec<Boundary> {
    fn of(v: &Value) -> Option<Boundary> {
        match v {
            Value::Instant { instant, .. } => Some(Boundary::Instant(*instant)),
            Value::Relative { past, duration, .. } => {
                Some(Boundary::Relative { past: *past, amount: duration.amount, unit: duration.unit })
            }
            _ => None,
        }
    }
    match t {
        Test::Window { window, duration, .. } => {
            let d = Boundary::Relative { past: *window != Window::Next, amount: duration.amount, unit: duration.unit };
            match window {
                Window::OlderThan => vec![d],
                Window::Last | Window::Next => vec![d, Boundary::Instant(Instant::Now)],
            }
        }
        Test::Compare { value, .. } | Test::Moment { value, .. } => of(value).into_iter().collect(),
        Test::Between { low, high, .. } => [low, high].into_iter().filter_map(of).collect(),
        Test::In { values, .. } => values.iter().filter_map(of).collect(),
        _ => vec![],
    }
}

/// Contacts whose membership may have changed since `since` (an SQL
/// timestamptz expression) only because time passed: for each moving
/// boundary `b` of each time-relative condition, the rows whose column lies in
/// `[b(since), b(now)]` (boundaries only move forward). A UNION of range
/// queries returning contact keys as column `k`; None when `p` does not depend
/// on time. With indexes on the time columns its cost follows the number of
/// crossing rows, not the table size.
pub fn sweep_candidates(p: &Pred, source: &Table, key: &str, since: &str) -> Option<String> {
    let mut parts = vec![];
    collect_bands(p, None, source, key, since, &mut parts);
    if parts.is_empty() {
        None
    } else {
        parts.sort();
        parts.dedup();
        Some(parts.join(" UNION "))
    }
}

fn band(column: &str, ty: &Ty, bounds: &[Boundary], since: &str) -> String {
    let clock = Clock::of(ty);
    let ranges: Vec<String> = bounds
        .iter()
        .map(|b| format!("({column} {} {} AND {column} {} {})", op!(">="), b.at(clock, since), op!("<="), b.at(clock, NOW)))
        .collect();
    format!("({})", ranges.join(" OR "))
}

/// Adds the band queries of `p`; `relation` is the relation whose rows are
/// in scope inside `ANY/COUNT/… rel (…)`.
fn collect_bands(
    p: &Pred,
    relation: Option<&crate::model::Relation>,
    source: &Table,
    key: &str,
    since: &str,
    out: &mut Vec<String>,
) {
    let src = qualified(&source.schema, &source.name);
    let related = |rel: &crate::model::Relation, col: &Column, bounds: &[Boundary]| {
        format!(
            "SELECT r.{}::pg_catalog.text AS k FROM {} r WHERE {}",
            ident(&rel.contact_column),
            qualified(&rel.table.schema, &rel.table.name),
            band(&format!("r.{}", ident(&col.name)), &col.ty, bounds, since)
        )
    };
    match p {
        Pred::And(a) | Pred::Or(a) => a.iter().for_each(|x| collect_bands(x, relation, source, key, since, out)),
        Pred::Not(x) => collect_bands(x, relation, source, key, since, out),
        Pred::InSegment(_) => {}
        Pred::Exists { relation: rel, filter, .. } => {
            if let Some(f) = filter {
                collect_bands(f, Some(rel), source, key, since, out);
            }
        }
        Pred::Test { operand, test } => {
            if let OperandKind::Aggregate { relation: rel, filter: Some(f), .. } = &operand.kind {
                collect_bands(f, Some(rel), source, key, since, out);
            }
            let bounds = boundaries(test);
            if bounds.is_empty() {
                return;
            }
            match (&operand.kind, relation) {
                (OperandKind::Column(c), None) => out.push(format!(
                    "SELECT s.{}::pg_catalog.text AS k FROM {src} s WHERE {}",
                    ident(key),
                    band(&format!("s.{}", ident(&c.name)), &c.ty, &bounds, since)
                )),
                (OperandKind::Column(c), Some(rel)) => out.push(related(rel, c, &bounds)),
                (OperandKind::LookupColumn { lookup, column }, _) => out.push(format!(
                    "SELECT s.{}::pg_catalog.text AS k FROM {src} s JOIN {} l ON l.{} {} s.{} WHERE {}",
                    ident(key),
                    qualified(&lookup.target.schema, &lookup.target.name),
                    ident(&lookup.target_key),
                    op!("="),
                    ident(&lookup.via_column),
                    band(&format!("l.{}", ident(&column.name)), &column.ty, &bounds, since)
                )),
                // MIN/MAX of a time column is one of the related rows' values.
                (OperandKind::Aggregate { relation: rel, column: Some(c), .. }, _) => out.push(related(rel, c, &bounds)),
                _ => {}
            }
        }
    }
}

/// A jsonb value as numeric, NULL when it is not a JSON number.
fn json_as_number(v: &str) -> String {
    format!("(CASE WHEN pg_catalog.jsonb_typeof({v}) {} 'number' THEN ({v})::pg_catalog.numeric END)", op!("="))
}

/// A jsonb value as text, NULL when it is not a JSON string.
fn json_as_text(v: &str) -> String {
    format!(
        "(CASE WHEN pg_catalog.jsonb_typeof({v}) {} 'string' THEN {v} {} '{{}}'::pg_catalog.text[] END)",
        op!("="),
        op!("#>>")
    )
}

/// JSON text of a string, number or boolean value (the checker allows no other
/// with jsonb). Numbers keep every digit.
fn json_text(value: &Value) -> String {
    match value {
        Value::String { value, .. } => serde_json::Value::String(value.clone()).to_string(),
        Value::Boolean { value, .. } => value.to_string(),
        Value::Number { value, .. } => json_number(value),
        other => unreachable!("checked: jsonb is never compared with {}", other.describe()),
    }
}

/// Lexer numbers may have leading zeros, which JSON forbids.
fn json_number(n: &str) -> String {
    let (sign, digits) = n.strip_prefix('-').map_or(("", n), |d| ("-", d));
    let trimmed = digits.trim_start_matches('0');
    let body = if trimmed.is_empty() || trimmed.starts_with('.') { format!("0{trimmed}") } else { trimmed.to_string() };
    format!("{sign}{body}")
}

fn json_literal(value: &Value) -> String {
    format!("{}::pg_catalog.jsonb", literal(&json_text(value)))
}

fn json_array(values: &[Value]) -> String {
    let items: Vec<String> = values.iter().map(json_text).collect();
    format!("{}::pg_catalog.jsonb", literal(&format!("[{}]", items.join(","))))
}
