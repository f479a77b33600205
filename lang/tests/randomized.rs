//! Randomized tests of the core: generated trees survive format → parse,
//! formatting is a fixed point, and no text makes the parser or the checker
//! panic. Fixed seed by default; `SEGMENTS_SEED` and `SEGMENTS_ITERATIONS`
//! run others and longer.

use segments_lang::ast::*;
use segments_lang::error::{ErrorKind, Span};
use support::rng::Rng;
use segments_lang::{codegen, format, parser, typecheck};
use support::catalog as testing;

mod support;

fn seed() -> u64 {
    std::env::var("SEGMENTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_5E65)
}

fn iterations(default: usize) -> usize {
    std::env::var("SEGMENTS_ITERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

const NAMES: &[&str] = &[
    "country", "score", "created_at", "props", "tags", "is_vip", "email", "birthday", "company", "events", "deals",
    "First Name", "count", "and", "Select", "a\"b", "été", "x$1", "_u", "in", "null", "now",
];
const STRINGS: &[&str] = &["DE", "", "it's", "50%_off", "back\\slash", "\"quoted\"", "ünïcödé", "--not a comment", "a''b"];
const NUMBERS: &[&str] = &["0", "42", "-3.5", "007", "123456789012345678901234567890.5", "-0"];

fn name(r: &mut Rng) -> Name {
    Name { span: Span::default(), name: r.pick(NAMES).to_string() }
}

fn duration(r: &mut Rng) -> Duration {
    let units = [Unit::Second, Unit::Minute, Unit::Hour, Unit::Day, Unit::Week, Unit::Month, Unit::Year];
    Duration { span: Span::default(), amount: r.below(400) as u32, unit: *r.pick(&units) }
}

fn value(r: &mut Rng) -> Value {
    let span = Span::default();
    match r.below(7) {
        0 => Value::String { span, value: r.pick(STRINGS).to_string() },
        1 => Value::Number { span, value: r.pick(NUMBERS).to_string() },
        2 => Value::Boolean { span, value: r.chance(50) },
        3 => Value::Date { span, value: format!("20{:02}-{:02}-{:02}", r.below(100), 1 + r.below(12), 1 + r.below(28)) },
        4 => Value::Timestamp { span, value: r.pick(&["2026-05-01T10:00:00Z", "2026-05-01T10:00", "2026-05-01T23:59:59.5+02:00"]).to_string() },
        5 => {
            let instants = [Instant::Now, Instant::Today, Instant::Yesterday, Instant::Tomorrow];
            Value::Instant { span, instant: *r.pick(&instants) }
        }
        _ => Value::Relative { span, past: r.chance(50), duration: duration(r) },
    }
}

fn values(r: &mut Rng) -> Vec<Value> {
    (0..1 + r.below(4)).map(|_| value(r)).collect()
}

fn test(r: &mut Rng) -> Test {
    let negated = r.chance(30);
    let cmps = [Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge];
    let text_ops = [TextOp::Contains, TextOp::StartsWith, TextOp::EndsWith, TextOp::Like, TextOp::Ilike, TextOp::Matches];
    match r.below(11) {
        0 => Test::Compare { cmp: *r.pick(&cmps), value: value(r) },
        1 => Test::In { negated, values: values(r) },
        2 => Test::Between { negated, low: value(r), high: value(r) },
        3 => Test::IsNull { negated },
        4 => Test::IsEmpty { negated },
        5 => Test::Text { negated, text_op: *r.pick(&text_ops), value: value(r) },
        6 => Test::ContainsSet {
            negated,
            quantifier: if r.chance(50) { Quantifier::Any } else { Quantifier::All },
            values: values(r),
        },
        7 => Test::Window {
            negated,
            window: *r.pick(&[Window::Last, Window::Next, Window::OlderThan]),
            duration: duration(r),
        },
        8 => Test::Moment { negated, moment: if r.chance(50) { Moment::Before } else { Moment::After }, value: value(r) },
        _ => Test::IsTrue,
    }
}

fn operand(r: &mut Rng, depth: usize) -> Operand {
    let span = Span::default();
    if r.chance(20) {
        let funcs = AggFunc::ALL;
        let func = *r.pick(&funcs);
        let column = (func != AggFunc::Count).then(|| name(r));
        let filter = (r.chance(40) && depth < 4).then(|| Box::new(expr(r, depth + 1)));
        return Operand::Aggregate { span, func, relation: name(r), column, filter };
    }
    Operand::Field { span, path: (0..1 + r.below(3)).map(|_| name(r)).collect() }
}

fn expr(r: &mut Rng, depth: usize) -> Expr {
    let span = Span::default();
    let leaf = depth >= 5 || r.chance(45);
    match if leaf { 3 + r.below(3) } else { r.below(3) } {
        0 => Expr::And { span, args: (0..2 + r.below(3)).map(|_| expr(r, depth + 1)).collect() },
        1 => Expr::Or { span, args: (0..2 + r.below(3)).map(|_| expr(r, depth + 1)).collect() },
        2 => Expr::Not { span, arg: Box::new(expr(r, depth + 1)) },
        3 => Expr::InSegment { span, segment: r.pick(STRINGS).to_string() },
        4 => Expr::Exists {
            span,
            negated: r.chance(50),
            relation: name(r),
            filter: (r.chance(50) && depth < 4).then(|| Box::new(expr(r, depth + 1))),
        },
        _ => {
            let operand = operand(r, depth);
            let mut t = test(r);
            if matches!(operand, Operand::Aggregate { .. }) && t == Test::IsTrue {
                t = Test::IsNull { negated: false };
            }
            Expr::Condition { span, operand, test: t }
        }
    }
}

/// The tree as JSON with every span removed.
fn shape(e: &Expr) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("span");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(e).unwrap();
    strip(&mut v);
    v
}

#[test]
fn generated_trees_round_trip_through_text() {
    let mut r = Rng(seed());
    let cat = testing::catalog();
    for n in 0..iterations(3000) {
        let tree = expr(&mut r, 0);
        let text = format::format(&tree);
        let parsed = parser::parse(&text).unwrap_or_else(|p| panic!("case {n}: {text}\n{:?}", p.locate(&text)));
        assert_eq!(shape(&tree), shape(&parsed), "case {n}: {text}");
        assert_eq!(format::format(&parsed), text, "case {n}: not a fixed point");
        // Whatever the checker decides, it decides without panicking, and
        // what it accepts compiles.
        if let Ok(checked) = typecheck::check(&parsed, &cat) {
            let sql = codegen::predicate(&checked.pred, "\"c\"", &cat.key);
            assert!(!sql.is_empty());
        }
        // Spans point into the text.
        let json = serde_json::to_string(&parsed).unwrap();
        assert!(parsed.span().end <= text.len(), "case {n}: {json}");
    }
}

#[test]
fn arbitrary_text_never_panics() {
    let mut r = Rng(seed() ^ 0xA5A5);
    let pieces = [
        "(", ")", " ", "'", "\"", "AND", "OR", "NOT", "IN", "SEGMENT", "ANY", "NO", "COUNT", "SUM", ".", ",", "=", "!=",
        "<", ">=", "country", "tags", "events", "7", "-7d", "+2w", "days", "ago", "in", "2026-02-29", "2026-05-01T10:00Z",
        "IS", "NULL", "EMPTY", "BETWEEN", "CONTAINS", "ALL", "WITHIN", "LAST", "OLDER", "THAN", "--", "\n", "é", ";",
        "\\", "%", "'x'", "3.5", "props", "company", "now", "9999999999999999999999",
    ];
    let cat = testing::catalog();
    for _ in 0..iterations(20000) {
        let mut text = String::new();
        for _ in 0..r.below(14) {
            if r.chance(5) {
                text.push(char::from_u32(r.below(0x3000) as u32).unwrap_or('?'));
            } else {
                let piece: &&str = r.pick(&pieces[..]);
                text.push_str(piece);
            }
            if r.chance(60) {
                text.push(' ');
            }
        }
        match parser::parse(&text) {
            Ok(e) => {
                let again = parser::parse(&format::format(&e)).expect("the canonical text of a parsed tree parses");
                assert_eq!(shape(&e), shape(&again), "{text}");
                let _ = typecheck::check(&e, &cat);
            }
            Err(p) => {
                assert!(p.span.start <= text.len(), "{text}: {p:?}");
                let d = p.locate(&text);
                assert!(d.line >= 1 && d.col >= 1);
            }
        }
    }
}

fn limit_error(text: &str) -> String {
    let p = parser::parse(text).expect_err("over the limit");
    assert_eq!(p.kind, ErrorKind::Limit, "{p:?}");
    p.message
}

#[test]
fn limits_give_errors_not_crashes() {
    let nots = format!("{}is_vip", "NOT ".repeat(10_000));
    assert_eq!(limit_error(&nots), "definition nests deeper than 64 levels");
    let relations = format!("{}is_vip{}", "ANY events (".repeat(100), ")".repeat(100));
    assert_eq!(limit_error(&relations), "definition nests deeper than 64 levels");
    let fine = format!("{}is_vip{}", "(".repeat(64), ")".repeat(64));
    assert!(parser::parse(&fine).is_ok());

    let many = vec!["score > 1"; 1001].join(" OR ");
    assert_eq!(limit_error(&many), "definition has more than 1000 conditions");
    assert!(parser::parse(&vec!["score > 1"; 1000].join(" OR ")).is_ok());

    let list = |n: usize| format!("score IN ({})", (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    assert_eq!(limit_error(&list(10_001)), "definition has more than 10000 list values");
    assert!(parser::parse(&list(10_000)).is_ok());

    let long = format!("email = '{}'", "x".repeat(64 * 1024));
    assert!(limit_error(&long).starts_with("definition is 65546 bytes long"));
}

#[test]
fn the_full_text_limit_still_errors_on_deep_nesting() {
    // 100,000 parentheses do not fit 64 KiB; the depth check must still be
    // what stops 32,000 of them, long before the stack.
    let deep = format!("{}is_vip{}", "(".repeat(32_000), ")".repeat(32_000));
    assert_eq!(limit_error(&deep), "definition nests deeper than 64 levels");
    let over = format!("{}is_vip{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(limit_error(&over).contains("bytes long"));
}
