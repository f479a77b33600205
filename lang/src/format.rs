//! Canonical text of a syntax tree.
//!
//! Keywords upper case, names quoted only when they must be, `<>` as `!=`,
//! relative times in words, nested groups always parenthesised. Parsing the
//! output gives back the same tree (up to spans), so formatting is a fixed point.

use crate::ast::*;
use crate::lexer::{lex, Tok};
use crate::parser::is_reserved;

pub fn format(e: &Expr) -> String {
    let mut out = String::new();
    expr(&mut out, e, None);
    out
}

/// Writes `e`; `parent` is the enclosing AND/OR, if any, which decides
/// whether a nested group needs parentheses.
fn expr(out: &mut String, e: &Expr, parent: Option<&'static str>) {
    match e {
        Expr::And { args, .. } => group(out, args, "AND", parent),
        Expr::Or { args, .. } => group(out, args, "OR", parent),
        Expr::Not { arg, .. } => {
            out.push_str("NOT ");
            match arg.as_ref() {
                Expr::And { .. } | Expr::Or { .. } => {
                    out.push('(');
                    expr(out, arg, None);
                    out.push(')');
                }
                _ => expr(out, arg, None),
            }
        }
        Expr::Condition { operand: o, test: t, .. } => {
            operand(out, o);
            test(out, t);
        }
        Expr::Exists { negated, relation, filter, .. } => {
            out.push_str(if *negated { "NO " } else { "ANY " });
            name(out, &relation.name);
            filter_group(out, filter.as_deref());
        }
        Expr::InSegment { segment, .. } => {
            out.push_str("IN SEGMENT ");
            string(out, segment);
        }
    }
}

fn group(out: &mut String, args: &[Expr], op: &'static str, parent: Option<&'static str>) {
    let paren = parent.is_some();
    if paren {
        out.push('(');
    }
    for (n, a) in args.iter().enumerate() {
        if n > 0 {
            out.push(' ');
            out.push_str(op);
            out.push(' ');
        }
        expr(out, a, Some(op));
    }
    if paren {
        out.push(')');
    }
}

fn filter_group(out: &mut String, filter: Option<&Expr>) {
    if let Some(f) = filter {
        out.push_str(" (");
        expr(out, f, None);
        out.push(')');
    }
}

fn operand(out: &mut String, o: &Operand) {
    match o {
        Operand::Field { path, .. } => {
            for (n, p) in path.iter().enumerate() {
                if n > 0 {
                    out.push('.');
                }
                name(out, &p.name);
            }
        }
        Operand::Aggregate { func, relation, column, filter, .. } => {
            out.push_str(func.keyword());
            out.push(' ');
            name(out, &relation.name);
            if let Some(c) = column {
                out.push('.');
                name(out, &c.name);
            }
            filter_group(out, filter.as_deref());
        }
    }
}

fn not(out: &mut String, negated: bool) {
    if negated {
        out.push_str(" NOT");
    }
}

fn test(out: &mut String, t: &Test) {
    match t {
        Test::Compare { cmp, value: v } => {
            out.push(' ');
            out.push_str(cmp.symbol());
            out.push(' ');
            value(out, v);
        }
        Test::In { negated, values } => {
            not(out, *negated);
            out.push_str(" IN ");
            list(out, values);
        }
        Test::Between { negated, low, high } => {
            not(out, *negated);
            out.push_str(" BETWEEN ");
            value(out, low);
            out.push_str(" AND ");
            value(out, high);
        }
        Test::IsNull { negated } => out.push_str(if *negated { " IS NOT NULL" } else { " IS NULL" }),
        Test::IsEmpty { negated } => out.push_str(if *negated { " IS NOT EMPTY" } else { " IS EMPTY" }),
        Test::Text { negated, text_op, value: v } => {
            not(out, *negated);
            out.push(' ');
            out.push_str(text_op.keyword());
            out.push(' ');
            value(out, v);
        }
        Test::ContainsSet { negated, quantifier, values } => {
            not(out, *negated);
            out.push_str(match quantifier {
                Quantifier::Any => " CONTAINS ANY ",
                Quantifier::All => " CONTAINS ALL ",
            });
            list(out, values);
        }
        Test::Window { negated, window, duration: d } => {
            not(out, *negated);
            out.push_str(match window {
                Window::Last => " WITHIN LAST ",
                Window::Next => " WITHIN NEXT ",
                Window::OlderThan => " OLDER THAN ",
            });
            duration(out, d);
        }
        Test::Moment { negated, moment, value: v } => {
            not(out, *negated);
            out.push_str(match moment {
                Moment::Before => " BEFORE ",
                Moment::After => " AFTER ",
            });
            value(out, v);
        }
        Test::IsTrue => {}
    }
}

fn list(out: &mut String, values: &[Value]) {
    out.push('(');
    for (n, v) in values.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        value(out, v);
    }
    out.push(')');
}

fn duration(out: &mut String, d: &Duration) {
    out.push_str(&d.amount.to_string());
    out.push(' ');
    out.push_str(d.unit.word());
    if d.amount != 1 {
        out.push('s');
    }
}

fn value(out: &mut String, v: &Value) {
    match v {
        Value::String { value, .. } => string(out, value),
        Value::Number { value, .. } | Value::Date { value, .. } | Value::Timestamp { value, .. } => {
            out.push_str(value)
        }
        Value::Boolean { value, .. } => out.push_str(if *value { "true" } else { "false" }),
        Value::Instant { instant, .. } => out.push_str(match instant {
            Instant::Now => "now",
            Instant::Today => "today",
            Instant::Yesterday => "yesterday",
            Instant::Tomorrow => "tomorrow",
        }),
        Value::Relative { past, duration: d, .. } => {
            if *past {
                duration(out, d);
                out.push_str(" ago");
            } else {
                out.push_str("in ");
                duration(out, d);
            }
        }
    }
}

fn string(out: &mut String, s: &str) {
    out.push('\'');
    out.push_str(&s.replace('\'', "''"));
    out.push('\'');
}

/// Writes a name bare when it would lex back as the same word, else quoted.
pub fn name(out: &mut String, n: &str) {
    let bare = !is_reserved(n)
        && matches!(lex(n).as_deref(), Ok([t, _]) if t.tok == Tok::Word(n.to_string()));
    if bare {
        out.push_str(n);
    } else {
        out.push('"');
        out.push_str(&n.replace('"', "\"\""));
        out.push('"');
    }
}
