//! The grammar of SPEC §3, as nom parsers over the token slice.
//!
//! Parsers are methods of `Parser` because the limits (depth, number of
//! conditions, list values) are counted while parsing: a 100,000-deep nesting
//! must stop at depth 64, long before the stack is in danger.

use std::cell::Cell;

use nom::{
    branch::alt,
    combinator::{cut, opt},
    error::{ErrorKind as NomKind, ParseError},
    multi::separated_list1,
    sequence::{delimited, preceded},
    Err as NomErr, IResult,
};

use crate::ast::*;
use crate::error::{ErrorKind, Problem, Span};
use crate::lexer::{lex, Sym, Tok, Token};

pub const MAX_TEXT_BYTES: usize = 64 * 1024;
pub const MAX_DEPTH: usize = 64;
pub const MAX_CONDITIONS: usize = 1_000;
pub const MAX_LIST_VALUES: usize = 10_000;

/// Words that cannot be bare identifiers because they start or continue a
/// construct at a place where a name could stand. Quote them to use them as
/// names: `"count"`.
pub const RESERVED: &[&str] = &[
    "after", "all", "and", "any", "avg", "before", "between", "contains", "count", "ends", "false", "ilike", "in",
    "is", "like", "matches", "max", "min", "no", "not", "older", "or", "starts", "sum", "true", "within",
];

pub fn is_reserved(word: &str) -> bool {
    RESERVED.binary_search(&word).is_ok()
}

type Toks<'a> = &'a [Token];
type PResult<'a, T> = IResult<Toks<'a>, T, PErr>;

/// A parse failure: the furthest position reached and what would have been
/// accepted there, or a finished problem (limits, invalid values).
#[derive(Debug, Clone)]
pub struct PErr {
    pos: usize,
    expected: Vec<&'static str>,
    problem: Option<Problem>,
}

impl PErr {
    fn at(input: Toks<'_>, expected: &'static str) -> Self {
        PErr { pos: input[0].span.start, expected: vec![expected], problem: None }
    }

    fn problem(p: Problem) -> Self {
        PErr { pos: p.span.start, expected: vec![], problem: Some(p) }
    }
}

impl<'a> ParseError<Toks<'a>> for PErr {
    fn from_error_kind(input: Toks<'a>, _: NomKind) -> Self {
        PErr { pos: input.first().map_or(usize::MAX, |t| t.span.start), expected: vec![], problem: None }
    }

    fn append(_: Toks<'a>, _: NomKind, other: Self) -> Self {
        other
    }

    fn or(mut self, other: Self) -> Self {
        if self.problem.is_some() {
            return self;
        }
        if other.problem.is_some() || other.pos > self.pos {
            return other;
        }
        if other.pos == self.pos {
            for e in other.expected {
                if !self.expected.contains(&e) {
                    self.expected.push(e);
                }
            }
        }
        self
    }
}

fn fail<'a, T>(input: Toks<'a>, expected: &'static str) -> PResult<'a, T> {
    Err(NomErr::Error(PErr::at(input, expected)))
}

fn abort<'a, T>(p: Problem) -> PResult<'a, T> {
    Err(NomErr::Failure(PErr::problem(p)))
}

/// The span from the first consumed token to the last one.
fn consumed(before: Toks<'_>, after: Toks<'_>) -> Span {
    let n = before.len() - after.len();
    if n == 0 {
        return Span::new(before[0].span.start, before[0].span.start);
    }
    before[0].span.to(before[n - 1].span)
}

fn kw<'a>(word: &'static str) -> impl Fn(Toks<'a>) -> PResult<'a, Span> {
    move |i: Toks<'a>| if i[0].is_kw(word) { Ok((&i[1..], i[0].span)) } else { fail(i, word) }
}

fn sym<'a>(s: Sym, shown: &'static str) -> impl Fn(Toks<'a>) -> PResult<'a, Span> {
    move |i: Toks<'a>| if i[0].tok == Tok::Sym(s) { Ok((&i[1..], i[0].span)) } else { fail(i, shown) }
}

fn lparen(i: Toks<'_>) -> PResult<'_, Span> {
    sym(Sym::LParen, "'('")(i)
}

fn rparen(i: Toks<'_>) -> PResult<'_, Span> {
    sym(Sym::RParen, "')'")(i)
}

fn ident(i: Toks<'_>) -> PResult<'_, Name> {
    match &i[0].tok {
        Tok::QuotedIdent(s) => Ok((&i[1..], Name { span: i[0].span, name: s.clone() })),
        Tok::Word(w) if !is_reserved(w) => Ok((&i[1..], Name { span: i[0].span, name: w.clone() })),
        _ => fail(i, "a name"),
    }
}

fn string(i: Toks<'_>) -> PResult<'_, (String, Span)> {
    match &i[0].tok {
        Tok::Str(s) => Ok((&i[1..], (s.clone(), i[0].span))),
        _ => fail(i, "a 'string'"),
    }
}

/// Parses a whole definition into its syntax tree.
pub fn parse(src: &str) -> Result<Expr, Problem> {
    if src.len() > MAX_TEXT_BYTES {
        return Err(Problem::error(
            ErrorKind::Limit,
            Span::new(MAX_TEXT_BYTES, src.len()),
            format!("definition is {} bytes long; the limit is {} bytes", src.len(), MAX_TEXT_BYTES),
        ));
    }
    let tokens = lex(src)?;
    if tokens[0].tok == Tok::Eof {
        return Err(Problem::error(ErrorKind::Syntax, Span::new(0, src.len()), "empty definition")
            .with_hint("write a filter such as: country = 'DE'"));
    }
    let p = Parser { src, depth: Cell::new(0), conditions: Cell::new(0), list_values: Cell::new(0) };
    match p.definition(&tokens) {
        Ok((_, expr)) => Ok(expr),
        Err(NomErr::Error(e) | NomErr::Failure(e)) => Err(p.explain(&tokens, e)),
        Err(NomErr::Incomplete(_)) => unreachable!("complete parsers never ask for more input"),
    }
}

struct Parser<'s> {
    src: &'s str,
    depth: Cell<usize>,
    conditions: Cell<usize>,
    list_values: Cell<usize>,
}

impl<'s> Parser<'s> {
    /// Turns the furthest failure into a message naming what was expected.
    fn explain(&self, tokens: &[Token], e: PErr) -> Problem {
        if let Some(p) = e.problem {
            return p;
        }
        let tok = tokens.iter().find(|t| t.span.start >= e.pos).unwrap_or(&tokens[tokens.len() - 1]);
        let found = tok.describe(self.src);
        let shown: Vec<String> = e
            .expected
            .iter()
            .map(|x| if x.chars().all(|c| c.is_ascii_lowercase()) { x.to_uppercase() } else { x.to_string() })
            .collect();
        let expected = match shown.as_slice() {
            [] => "something else".to_string(),
            [one] => one.clone(),
            [init @ .., last] => format!("{} or {}", init.join(", "), last),
        };
        let problem = Problem::error(ErrorKind::Syntax, tok.span, format!("expected {expected}, found {found}"));
        match &tok.tok {
            Tok::Word(w) if is_reserved(w) && !["and", "or", "not"].contains(&w.as_str()) => {
                problem.with_hint(format!("{w} is a keyword; write \"{w}\" to use it as a name"))
            }
            Tok::Word(w) if w == "null" => problem.with_hint("test for NULL with IS NULL / IS NOT NULL"),
            Tok::Sym(Sym::Eq) if e.expected.contains(&"a value") => problem.with_hint("compare with a single ="),
            _ => problem,
        }
    }

    fn nest<'a, T>(&self, i: Toks<'a>, f: impl FnOnce(Toks<'a>) -> PResult<'a, T>) -> PResult<'a, T> {
        let depth = self.depth.get() + 1;
        if depth > MAX_DEPTH {
            return abort(Problem::error(
                ErrorKind::Limit,
                i[0].span,
                format!("definition nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.depth.set(depth);
        let r = f(i);
        self.depth.set(depth - 1);
        r
    }

    fn count_condition(&self, span: Span) -> Result<(), NomErr<PErr>> {
        let n = self.conditions.get() + 1;
        self.conditions.set(n);
        if n > MAX_CONDITIONS {
            return Err(NomErr::Failure(PErr::problem(Problem::error(
                ErrorKind::Limit,
                span,
                format!("definition has more than {MAX_CONDITIONS} conditions"),
            ))));
        }
        Ok(())
    }

    fn definition<'a>(&self, i: Toks<'a>) -> PResult<'a, Expr> {
        let (i, e) = self.expr(i)?;
        if i[0].tok == Tok::Eof {
            Ok((i, e))
        } else {
            // Re-run the failure that made expr stop here, so the message lists
            // every construct that could have continued.
            let mut err = PErr::at(i, "AND");
            err.expected.push("OR");
            err.expected.push("end of input");
            if matches!(i[0].tok, Tok::Sym(Sym::RParen)) {
                err.expected = vec!["AND", "OR", "end of input (this ')' has no matching '(')"];
            }
            Err(NomErr::Failure(err))
        }
    }

    fn expr<'a>(&self, i: Toks<'a>) -> PResult<'a, Expr> {
        self.chain(i, "or", |i| self.term(i), |span, args| Expr::Or { span, args })
    }

    fn term<'a>(&self, i: Toks<'a>) -> PResult<'a, Expr> {
        self.chain(i, "and", |i| self.factor(i), |span, args| Expr::And { span, args })
    }

    /// `item (KW item)*`, one n-ary node when there is more than one item.
    fn chain<'a>(
        &self,
        i: Toks<'a>,
        word: &'static str,
        item: impl Fn(Toks<'a>) -> PResult<'a, Expr>,
        build: impl Fn(Span, Vec<Expr>) -> Expr,
    ) -> PResult<'a, Expr> {
        let start = i;
        let (mut i, first) = item(i)?;
        let mut args = vec![first];
        while i[0].is_kw(word) {
            let (rest, next) = cut(&item)(&i[1..])?;
            args.push(next);
            i = rest;
        }
        if args.len() == 1 {
            Ok((i, args.pop().expect("one item")))
        } else {
            Ok((i, build(consumed(start, i), args)))
        }
    }

    fn factor<'a>(&self, i: Toks<'a>) -> PResult<'a, Expr> {
        if i[0].is_kw("not") {
            let start = i;
            return self.nest(i, |i| {
                let (i, arg) = cut(|i| self.factor(i))(&i[1..])?;
                Ok((i, Expr::Not { span: consumed(start, i), arg: Box::new(arg) }))
            });
        }
        if i[0].tok == Tok::Sym(Sym::LParen) {
            return self.nest(i, |i| {
                let (i, e) = cut(|i| self.expr(i))(&i[1..])?;
                let (i, _) = cut(rparen)(i)?;
                Ok((i, e))
            });
        }
        self.condition(i)
    }

    fn condition<'a>(&self, i: Toks<'a>) -> PResult<'a, Expr> {
        let start = i;
        // The first word decides the construct (IN, ANY and NO are reserved),
        // so no alternative is tried only to fail.
        let parsed = if i[0].is_kw("in") {
            self.in_segment(i)
        } else if i[0].is_kw("any") || i[0].is_kw("no") {
            self.exists(i)
        } else {
            self.operand_condition(i)
        };
        let (i, e) = parsed.map_err(
            |e| match e {
                NomErr::Error(mut pe) if pe.pos == start[0].span.start => {
                    pe.expected = vec!["a condition (such as country = 'DE')"];
                    NomErr::Error(pe)
                }
                other => other,
            },
        )?;
        self.count_condition(consumed(start, i))?;
        Ok((i, e))
    }

    fn in_segment<'a>(&self, i: Toks<'a>) -> PResult<'a, Expr> {
        let start = i;
        let (i, _) = kw("in")(i)?;
        let (i, _) = cut(kw("segment"))(i)?;
        let (i, (segment, _)) = cut(string)(i)?;
        Ok((i, Expr::InSegment { span: consumed(start, i), segment }))
    }

    fn exists<'a>(&self, i: Toks<'a>) -> PResult<'a, Expr> {
        let start = i;
        let (i, negated) = alt((nom::combinator::map(kw("any"), |_| false), nom::combinator::map(kw("no"), |_| true)))(i)?;
        let (i, relation) = cut(ident)(i)?;
        let (i, filter) = self.relation_filter(i)?;
        Ok((i, Expr::Exists { span: consumed(start, i), negated, relation, filter }))
    }

    /// The optional `( expr )` after a relation; names inside refer to the
    /// related table, which the type checker enforces.
    fn relation_filter<'a>(&self, i: Toks<'a>) -> PResult<'a, Option<Box<Expr>>> {
        if i[0].tok != Tok::Sym(Sym::LParen) {
            return Ok((i, None));
        }
        self.nest(i, |i| {
            let (i, e) = cut(delimited(lparen, |i| self.expr(i), rparen))(i)?;
            Ok((i, Some(Box::new(e))))
        })
    }

    fn operand_condition<'a>(&self, i: Toks<'a>) -> PResult<'a, Expr> {
        let start = i;
        let (i, operand) = self.operand(i)?;
        let ends_condition = |t: &Token| {
            t.is_kw("and") || t.is_kw("or") || matches!(t.tok, Tok::Eof | Tok::Sym(Sym::RParen))
        };
        let (i, test) = if ends_condition(&i[0]) && matches!(operand, Operand::Field { .. }) {
            (i, Test::IsTrue)
        } else {
            cut(|i| self.test(i))(i)?
        };
        Ok((i, Expr::Condition { span: consumed(start, i), operand, test }))
    }

    fn operand<'a>(&self, i: Toks<'a>) -> PResult<'a, Operand> {
        if agg_func(&i[0]).is_some() {
            alt((|i| self.aggregate(i), |i| self.field(i)))(i)
        } else {
            self.field(i)
        }
    }

    fn field<'a>(&self, i: Toks<'a>) -> PResult<'a, Operand> {
        let start = i;
        let (mut i, first) = ident(i)?;
        let mut path = vec![first];
        while i[0].tok == Tok::Sym(Sym::Dot) {
            let (rest, next) = cut(ident)(&i[1..])?;
            path.push(next);
            i = rest;
        }
        Ok((i, Operand::Field { span: consumed(start, i), path }))
    }

    fn aggregate<'a>(&self, i: Toks<'a>) -> PResult<'a, Operand> {
        let start = i;
        let Some(func) = agg_func(&i[0]) else {
            return fail(i, "an operand");
        };
        // `count > 1` is a column named count, which must be quoted: fail
        // softly here so the message is about the keyword.
        let Ok((i, relation)) = ident(&i[1..]) else {
            return fail(i, "a name");
        };
        let (i, column) = if func == AggFunc::Count {
            (i, None)
        } else {
            let (i, col) = cut(preceded(sym(Sym::Dot, "'.' and the column to aggregate"), ident))(i)?;
            (i, Some(col))
        };
        let (i, filter) = self.relation_filter(i)?;
        Ok((i, Operand::Aggregate { span: consumed(start, i), func, relation, column, filter }))
    }

    fn test<'a>(&self, i: Toks<'a>) -> PResult<'a, Test> {
        if let Tok::Sym(s) = i[0].tok {
            let cmp = match s {
                Sym::Eq => Cmp::Eq,
                Sym::Ne => Cmp::Ne,
                Sym::Lt => Cmp::Lt,
                Sym::Le => Cmp::Le,
                Sym::Gt => Cmp::Gt,
                Sym::Ge => Cmp::Ge,
                _ => return self.no_operator(i),
            };
            let (i, value) = cut(|i| self.value(i))(&i[1..])?;
            return Ok((i, Test::Compare { cmp, value }));
        }
        if i[0].is_kw("is") {
            let (i, negated) = opt(kw("not"))(&i[1..])?;
            let negated = negated.is_some();
            return cut(alt((
                nom::combinator::map(kw("null"), move |_| Test::IsNull { negated }),
                nom::combinator::map(kw("empty"), move |_| Test::IsEmpty { negated }),
            )))(i);
        }
        let (i, not) = opt(kw("not"))(i)?;
        let negated = not.is_some();
        let word = match &i[0].tok {
            Tok::Word(w) => w.as_str(),
            _ => return self.no_operator(i),
        };
        let rest = &i[1..];
        match word {
            "in" => {
                let (i, values) = cut(|i| self.value_list(i))(rest)?;
                Ok((i, Test::In { negated, values }))
            }
            "between" => {
                let (i, low) = cut(|i| self.value(i))(rest)?;
                let (i, _) = cut(kw("and"))(i)?;
                let (i, high) = cut(|i| self.value(i))(i)?;
                Ok((i, Test::Between { negated, low, high }))
            }
            "contains" => {
                let quantifier = if rest[0].is_kw("any") {
                    Some(Quantifier::Any)
                } else if rest[0].is_kw("all") {
                    Some(Quantifier::All)
                } else {
                    None
                };
                if let Some(quantifier) = quantifier {
                    let (i, values) = cut(|i| self.value_list(i))(&rest[1..])?;
                    Ok((i, Test::ContainsSet { negated, quantifier, values }))
                } else {
                    let (i, value) = cut(|i| self.value(i))(rest)?;
                    Ok((i, Test::Text { negated, text_op: TextOp::Contains, value }))
                }
            }
            "starts" | "ends" | "like" | "ilike" | "matches" => {
                let (rest, text_op) = match word {
                    "starts" => (cut(kw("with"))(rest)?.0, TextOp::StartsWith),
                    "ends" => (cut(kw("with"))(rest)?.0, TextOp::EndsWith),
                    "like" => (rest, TextOp::Like),
                    "ilike" => (rest, TextOp::Ilike),
                    _ => (rest, TextOp::Matches),
                };
                let (i, value) = cut(|i| self.value(i))(rest)?;
                Ok((i, Test::Text { negated, text_op, value }))
            }
            "within" => {
                let (rest, window) = cut(alt((
                    nom::combinator::map(kw("last"), |_| Window::Last),
                    nom::combinator::map(kw("next"), |_| Window::Next),
                )))(rest)?;
                let (i, duration) = cut(|i| self.duration(i))(rest)?;
                Ok((i, Test::Window { negated, window, duration }))
            }
            "older" => {
                let (rest, _) = cut(kw("than"))(rest)?;
                let (i, duration) = cut(|i| self.duration(i))(rest)?;
                Ok((i, Test::Window { negated, window: Window::OlderThan, duration }))
            }
            "before" | "after" => {
                let moment = if word == "before" { Moment::Before } else { Moment::After };
                let (i, value) = cut(|i| self.value(i))(rest)?;
                Ok((i, Test::Moment { negated, moment, value }))
            }
            _ => self.no_operator(i),
        }
    }

    fn no_operator<'a, T>(&self, i: Toks<'a>) -> PResult<'a, T> {
        Err(NomErr::Failure(PErr::at(
            i,
            "an operator (= != < <= > >= IN BETWEEN IS CONTAINS STARTS WITH ENDS WITH LIKE ILIKE MATCHES WITHIN OLDER THAN BEFORE AFTER)",
        )))
    }

    fn value_list<'a>(&self, i: Toks<'a>) -> PResult<'a, Vec<Value>> {
        let (i, values) =
            delimited(lparen, separated_list1(sym(Sym::Comma, "','"), |i| self.value(i)), rparen)(i)?;
        let total = self.list_values.get() + values.len();
        self.list_values.set(total);
        if total > MAX_LIST_VALUES {
            let span = values[0].span().to(values[values.len() - 1].span());
            return abort(Problem::error(
                ErrorKind::Limit,
                span,
                format!("definition has more than {MAX_LIST_VALUES} list values"),
            ));
        }
        Ok((i, values))
    }

    fn value<'a>(&self, i: Toks<'a>) -> PResult<'a, Value> {
        let t = &i[0];
        let span = t.span;
        let rest = &i[1..];
        let v = match &t.tok {
            Tok::Str(s) => Value::String { span, value: s.clone() },
            Tok::Number(n) => {
                if rest[0].is_kw("ago") || matches!(&rest[0].tok, Tok::Word(w) if Unit::parse(w).is_some()) {
                    return self.relative_ago(i);
                }
                Value::Number { span, value: n.clone() }
            }
            Tok::Date(d) => {
                check_date(d).map_err(|m| NomErr::Failure(PErr::problem(Problem::error(ErrorKind::InvalidValue, span, m))))?;
                Value::Date { span, value: d.clone() }
            }
            Tok::Timestamp(ts) => {
                check_date(&ts[..10])
                    .and_then(|_| check_time(&ts[11..]))
                    .map_err(|m| NomErr::Failure(PErr::problem(Problem::error(ErrorKind::InvalidValue, span, m))))?;
                Value::Timestamp { span, value: ts.clone() }
            }
            Tok::Relative { past, amount, unit } => {
                let Some(unit) = Unit::parse(unit) else {
                    return abort(
                        Problem::error(ErrorKind::Syntax, span, format!("unknown time unit '{unit}'"))
                            .with_hint("units: s min h d w mo y, or second(s) minute(s) hour(s) day(s) week(s) month(s) year(s)"),
                    );
                };
                let amount = amount_of(amount, span).map_err(|p| NomErr::Failure(PErr::problem(p)))?;
                Value::Relative { span, past: *past, duration: Duration { span, amount, unit } }
            }
            Tok::Word(w) => match w.as_str() {
                "true" | "false" => Value::Boolean { span, value: w == "true" },
                "now" => Value::Instant { span, instant: Instant::Now },
                "today" => Value::Instant { span, instant: Instant::Today },
                "yesterday" => Value::Instant { span, instant: Instant::Yesterday },
                "tomorrow" => Value::Instant { span, instant: Instant::Tomorrow },
                "in" => {
                    let (i, duration) = cut(|i| self.duration(i))(rest)?;
                    let span = span.to(duration.span);
                    return Ok((i, Value::Relative { span, past: false, duration }));
                }
                _ => return fail(i, "a value"),
            },
            _ => return fail(i, "a value"),
        };
        Ok((rest, v))
    }

    /// `7 days ago`.
    fn relative_ago<'a>(&self, i: Toks<'a>) -> PResult<'a, Value> {
        let (i2, duration) = self.duration(i)?;
        let (i3, ago) = cut(kw("ago"))(i2).map_err(|_| {
            NomErr::Failure(PErr {
                pos: i2[0].span.start,
                expected: vec!["'ago' (as in 7 days ago) — a bare duration is not a point in time"],
                problem: None,
            })
        })?;
        Ok((i3, Value::Relative { span: duration.span.to(ago), past: true, duration }))
    }

    fn duration<'a>(&self, i: Toks<'a>) -> PResult<'a, Duration> {
        let Tok::Number(n) = &i[0].tok else {
            return fail(i, "a duration such as 30 days");
        };
        let amount = amount_of(n, i[0].span).map_err(|p| NomErr::Failure(PErr::problem(p)))?;
        let unit = match &i[1].tok {
            Tok::Word(w) => Unit::parse(w),
            _ => None,
        };
        let Some(unit) = unit else {
            return Err(NomErr::Failure(PErr {
                pos: i[1].span.start,
                expected: vec!["a time unit (seconds, minutes, hours, days, weeks, months, years or s min h d w mo y)"],
                problem: None,
            }));
        };
        Ok((&i[2..], Duration { span: i[0].span.to(i[1].span), amount, unit }))
    }
}

/// The aggregate a bare word names, if any.
fn agg_func(t: &Token) -> Option<AggFunc> {
    match &t.tok {
        Tok::Word(w) => AggFunc::ALL.into_iter().find(|f| f.keyword().eq_ignore_ascii_case(w)),
        _ => None,
    }
}

fn amount_of(text: &str, span: Span) -> Result<u32, Problem> {
    if text.contains('.') || text.starts_with('-') {
        return Err(Problem::error(ErrorKind::InvalidValue, span, "a duration needs a whole, non-negative number"));
    }
    text.parse::<u32>()
        .map_err(|_| Problem::error(ErrorKind::InvalidValue, span, format!("duration amount {text} is too large")))
}

fn check_date(d: &str) -> Result<(), String> {
    let y: u32 = d[0..4].parse().map_err(|_| format!("invalid date {d}"))?;
    let m: u32 = d[5..7].parse().map_err(|_| format!("invalid date {d}"))?;
    let day: u32 = d[8..10].parse().map_err(|_| format!("invalid date {d}"))?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("invalid date {d}: month {m} does not exist")),
    };
    if y == 0 || day == 0 || day > days {
        return Err(format!("invalid date {d}: day {day} does not exist"));
    }
    Ok(())
}

/// `hh:mm[:ss[.frac]][Z|±hh[:mm]]`, the part after the `T`.
fn check_time(t: &str) -> Result<(), String> {
    let num = |s: &str| s.parse::<u32>().unwrap_or(99);
    let bad = || format!("invalid time {t}");
    if num(&t[0..2]) > 23 || num(&t[3..5]) > 59 {
        return Err(bad());
    }
    if t.len() >= 8 && t.as_bytes()[5] == b':' && num(&t[6..8]) > 59 {
        return Err(bad());
    }
    if let Some(pos) = t.rfind(['+', '-']) {
        let off = &t[pos + 1..];
        if num(&off[..2]) > 15 {
            return Err(format!("invalid time zone offset in {t}"));
        }
    }
    Ok(())
}
