//! Tokens of the segment definition language.
//!
//! Lexing first keeps the grammar (in `parser`) free of whitespace, comment and
//! quoting rules, and gives every token an exact byte span for diagnostics.

use nom::{
    branch::alt,
    bytes::complete::{tag, take_while, take_while1, take_while_m_n},
    character::complete::{char, digit1, one_of},
    combinator::{opt, recognize},
    sequence::{pair, preceded, tuple},
    IResult,
};

use crate::error::{ErrorKind, Problem, Span};

/// Comparison operators as written (`<>` is kept apart only for the span).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sym {
    LParen,
    RParen,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Sym(Sym),
    /// A bare word, folded to lower case; keywords are bare words.
    Word(String),
    /// A double-quoted identifier, kept as written.
    QuotedIdent(String),
    Str(String),
    /// Decimal number text, optionally negative: `12`, `-3.5`.
    Number(String),
    Date(String),
    Timestamp(String),
    /// Shopify-style relative time: `-7d`, `+2w` (sign, amount, unit text).
    Relative { past: bool, amount: String, unit: String },
    Eof,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

impl Token {
    /// How the token is shown in "found …" messages.
    pub fn describe(&self, src: &str) -> String {
        match &self.tok {
            Tok::Eof => "end of input".to_string(),
            Tok::Str(_) => format!("the string {}", &src[self.span.start..self.span.end]),
            _ => {
                let text = &src[self.span.start..self.span.end];
                let shown: String = text.chars().take(40).collect();
                format!("'{}'", shown)
            }
        }
    }

    /// True for an unquoted word equal to `kw` (already lower case).
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Word(w) if w == kw)
    }
}

type LResult<'a, T> = IResult<&'a str, T>;

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c == '$' || c.is_alphanumeric()
}

fn word(i: &str) -> LResult<'_, &str> {
    recognize(pair(take_while_m_n(1, 1, is_ident_start), take_while(is_ident_char)))(i)
}

fn digits2(i: &str) -> LResult<'_, &str> {
    take_while_m_n(2, 2, |c: char| c.is_ascii_digit())(i)
}

fn date(i: &str) -> LResult<'_, &str> {
    recognize(tuple((take_while_m_n(4, 4, |c: char| c.is_ascii_digit()), char('-'), digits2, char('-'), digits2)))(i)
}

fn time_part(i: &str) -> LResult<'_, &str> {
    recognize(tuple((
        one_of("Tt"),
        digits2,
        char(':'),
        digits2,
        opt(tuple((char(':'), digits2, opt(pair(char('.'), digit1))))),
        opt(alt((
            tag("Z"),
            tag("z"),
            recognize(tuple((one_of("+-"), digits2, opt(char(':')), opt(digits2)))),
        ))),
    )))(i)
}

fn number(i: &str) -> LResult<'_, &str> {
    recognize(tuple((opt(char('-')), digit1, opt(pair(char('.'), digit1)))))(i)
}

fn relative(i: &str) -> LResult<'_, (char, &str, &str)> {
    tuple((one_of("+-"), digit1, take_while1(|c: char| c.is_ascii_alphabetic())))(i)
}

fn symbol(i: &str) -> LResult<'_, Sym> {
    alt((
        nom::combinator::value(Sym::Ne, alt((tag("!="), tag("<>")))),
        nom::combinator::value(Sym::Le, tag("<=")),
        nom::combinator::value(Sym::Ge, tag(">=")),
        nom::combinator::value(Sym::Lt, tag("<")),
        nom::combinator::value(Sym::Gt, tag(">")),
        nom::combinator::value(Sym::Eq, tag("=")),
        nom::combinator::value(Sym::LParen, tag("(")),
        nom::combinator::value(Sym::RParen, tag(")")),
        nom::combinator::value(Sym::Comma, tag(",")),
        nom::combinator::value(Sym::Dot, tag(".")),
    ))(i)
}

/// Skips whitespace and `--` comments.
fn trivia(i: &str) -> &str {
    let mut rest = i;
    loop {
        let trimmed = rest.trim_start();
        if let Ok((after, _)) = preceded(tag::<_, _, nom::error::Error<&str>>("--"), take_while(|c| c != '\n'))(trimmed) {
            rest = after;
        } else {
            return trimmed;
        }
    }
}

/// Reads a quoted run (`'…'` or `"…"`, the quote doubled to escape it).
/// Returns the unescaped content and the rest, or None when unterminated.
fn quoted(i: &str, q: char) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = i.char_indices().skip(1).peekable();
    while let Some((idx, c)) = chars.next() {
        if c == q {
            if matches!(chars.peek(), Some((_, c2)) if *c2 == q) {
                chars.next();
                out.push(q);
            } else {
                return Some((out, &i[idx + c.len_utf8()..]));
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// A date, timestamp, relative time or number; the first character decides
/// whether any of them is worth trying.
fn numeric(rest: &str) -> Option<(Tok, &str)> {
    if !rest.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
        return None;
    }
    if let Ok((after, d)) = date(rest) {
        return Some(match time_part(after) {
            Ok((after2, t)) => (Tok::Timestamp(format!("{d}{t}")), after2),
            Err(_) => (Tok::Date(d.to_string()), after),
        });
    }
    if let Ok((after, (sign, amount, unit))) = relative(rest) {
        let tok = Tok::Relative { past: sign == '-', amount: amount.to_string(), unit: unit.to_ascii_lowercase() };
        return Some((tok, after));
    }
    number(rest).ok().map(|(after, n)| (Tok::Number(n.to_string()), after))
}

/// Splits `src` into tokens, ending with `Tok::Eof`.
pub fn lex(src: &str) -> Result<Vec<Token>, Problem> {
    let mut tokens = Vec::new();
    let mut rest = trivia(src);
    let at = |rest: &str| src.len() - rest.len();
    while !rest.is_empty() {
        let start = at(rest);
        let first = rest.chars().next().unwrap_or(' ');
        let (tok, after) = if first == '\'' || first == '"' {
            let Some((text, after)) = quoted(rest, first) else {
                let what = if first == '\'' { "string" } else { "quoted identifier" };
                return Err(Problem::error(ErrorKind::Syntax, Span::new(start, src.len()), format!("unterminated {what}"))
                    .with_hint(format!("close it with {first}; write {first}{first} for a {first} inside it")));
            };
            if first == '\'' {
                (Tok::Str(text), after)
            } else if text.is_empty() {
                return Err(Problem::error(ErrorKind::Syntax, Span::new(start, at(after)), "empty quoted identifier"));
            } else {
                (Tok::QuotedIdent(text), after)
            }
        } else if let Some((tok, after)) = numeric(rest) {
            (tok, after)
        } else if let Ok((after, w)) = word(rest) {
            // Like PostgreSQL, unquoted identifiers fold ASCII letters only.
            (Tok::Word(w.to_ascii_lowercase()), after)
        } else if let Ok((after, s)) = symbol(rest) {
            (Tok::Sym(s), after)
        } else {
            let end = start + first.len_utf8();
            let hint = match first {
                ';' => "a definition is a single filter; remove the ';'",
                '!' => "use != or NOT",
                '&' | '|' => "use AND / OR",
                _ => "strings go in single quotes, names with odd characters in double quotes",
            };
            return Err(Problem::error(ErrorKind::Syntax, Span::new(start, end), format!("unexpected character '{first}'"))
                .with_hint(hint));
        };
        tokens.push(Token { tok, span: Span::new(start, at(after)) });
        rest = trivia(after);
    }
    tokens.push(Token { tok: Tok::Eof, span: Span::new(src.len(), src.len()) });
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn words_fold_and_quoted_identifiers_do_not() {
        assert_eq!(
            kinds(r#"Country "First Name" "a""b""#),
            vec![
                Tok::Word("country".into()),
                Tok::QuotedIdent("First Name".into()),
                Tok::QuotedIdent("a\"b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn strings_numbers_dates_and_relatives() {
        assert_eq!(
            kinds("'it''s' -3.5 42 2026-05-01 2026-05-01T10:00:00Z -7d +2w 7days"),
            vec![
                Tok::Str("it's".into()),
                Tok::Number("-3.5".into()),
                Tok::Number("42".into()),
                Tok::Date("2026-05-01".into()),
                Tok::Timestamp("2026-05-01T10:00:00Z".into()),
                Tok::Relative { past: true, amount: "7".into(), unit: "d".into() },
                Tok::Relative { past: false, amount: "2".into(), unit: "w".into() },
                Tok::Number("7".into()),
                Tok::Word("days".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn operators_and_comments() {
        assert_eq!(
            kinds("a<>b -- comment\n!= <= >= < > = ( ) , ."),
            vec![
                Tok::Word("a".into()),
                Tok::Sym(Sym::Ne),
                Tok::Word("b".into()),
                Tok::Sym(Sym::Ne),
                Tok::Sym(Sym::Le),
                Tok::Sym(Sym::Ge),
                Tok::Sym(Sym::Lt),
                Tok::Sym(Sym::Gt),
                Tok::Sym(Sym::Eq),
                Tok::Sym(Sym::LParen),
                Tok::Sym(Sym::RParen),
                Tok::Sym(Sym::Comma),
                Tok::Sym(Sym::Dot),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn spans_are_byte_ranges() {
        let toks = lex("  ab = 'x'").unwrap();
        assert_eq!(toks[0].span, Span::new(2, 4));
        assert_eq!(toks[2].span, Span::new(7, 10));
        assert_eq!(toks[3].span, Span::new(10, 10));
    }

    #[test]
    fn errors_point_at_the_culprit() {
        let e = lex("a = 'open").unwrap_err();
        assert_eq!((e.kind, e.span.start, e.message.as_str()), (ErrorKind::Syntax, 4, "unterminated string"));
        let e = lex("a = 1; b").unwrap_err();
        assert_eq!((e.span.start, e.message.as_str()), (5, "unexpected character ';'"));
        assert!(lex("\"\"").is_err());
    }
}
