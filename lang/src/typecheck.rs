//! Name resolution and type checking against a `Catalog`.
//!
//! The output is a resolved tree (`Pred`) in which every name has become a
//! catalog object and every operand has a type, so the code generator never
//! looks anything up and never fails.

use crate::ast::{AggFunc, Cmp, Expr, Moment, Operand, Quantifier, Test, TextOp, Value};
use crate::error::{suggest, ErrorKind, Problem, Span};
use crate::model::{Catalog, Column, Lookup, Relation, SegmentRef, Table, Ty};

#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
    Test { operand: Typed, test: Test },
    Exists { negated: bool, relation: Box<Relation>, filter: Option<Box<Pred>> },
    InSegment(Box<SegmentRef>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Typed {
    pub kind: OperandKind,
    pub ty: Ty,
    /// Whether the operand's SQL can be NULL (decides where COALESCE is needed).
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OperandKind {
    /// A column of the row in scope: the source row, or the related row
    /// inside a relation filter.
    Column(Column),
    LookupColumn { lookup: Box<Lookup>, column: Column },
    /// `base #> path`; `base` is a jsonb column or lookup column.
    JsonPath { base: Box<Typed>, path: Vec<String> },
    Aggregate { func: AggFunc, relation: Box<Relation>, column: Option<Column>, filter: Option<Box<Pred>> },
}

/// A checked definition and the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub pred: Pred,
    pub warnings: Vec<Problem>,
}

pub fn check(expr: &Expr, catalog: &Catalog) -> Result<Checked, Vec<Problem>> {
    let mut cx = Checker { catalog, problems: vec![] };
    let pred = cx.expr(expr, &Scope::Source);
    let (errors, warnings): (Vec<Problem>, Vec<Problem>) =
        cx.problems.into_iter().partition(|p| p.severity == crate::error::Severity::Error);
    match pred {
        Some(pred) if errors.is_empty() => Ok(Checked { pred, warnings }),
        _ => Err(errors),
    }
}

/// Where names are looked up.
enum Scope<'c> {
    Source,
    /// Inside `ANY rel (…)`: the related table only.
    Related(&'c Relation),
}

struct Checker<'c> {
    catalog: &'c Catalog,
    problems: Vec<Problem>,
}

impl<'c> Checker<'c> {
    fn err<T>(&mut self, kind: ErrorKind, span: Span, msg: String) -> Option<T> {
        self.problems.push(Problem::error(kind, span, msg));
        None
    }

    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    /// Checks every child even after an error, so that `check()` reports all
    /// problems at once.
    fn all(&mut self, args: &[Expr], scope: &Scope<'c>) -> Option<Vec<Pred>> {
        let mut checked = Vec::with_capacity(args.len());
        let mut all_ok = true;
        for a in args {
            match self.expr(a, scope) {
                Some(p) => checked.push(p),
                None => all_ok = false,
            }
        }
        all_ok.then_some(checked)
    }

    fn expr(&mut self, e: &Expr, scope: &Scope<'c>) -> Option<Pred> {
        match e {
            Expr::And { args, span } | Expr::Or { args, span } if args.is_empty() => {
                self.err(ErrorKind::Syntax, *span, "a group needs at least one condition".into())
            }
            Expr::And { args, .. } => Some(Pred::And(self.all(args, scope)?)),
            Expr::Or { args, .. } => Some(Pred::Or(self.all(args, scope)?)),
            Expr::Not { arg, .. } => Some(Pred::Not(Box::new(self.expr(arg, scope)?))),
            Expr::Condition { operand, test, span } => {
                let typed = self.operand(operand, scope)?;
                self.test(&typed, test, operand.span(), *span)?;
                Some(Pred::Test { operand: typed, test: test.clone() })
            }
            Expr::Exists { negated, relation, filter, .. } => {
                let rel = self.relation(&relation.name, relation.span, scope)?;
                let filter = self.filter(filter.as_deref(), rel)?;
                Some(Pred::Exists { negated: *negated, relation: Box::new(rel.clone()), filter })
            }
            Expr::InSegment { segment, span } => {
                if let Scope::Related(r) = scope {
                    let msg = format!("IN SEGMENT is about contacts, not about rows of relation {}", r.name);
                    return self.err(ErrorKind::Syntax, *span, msg);
                }
                match self.catalog.segment(segment) {
                    Some(s) => Some(Pred::InSegment(Box::new(s.clone()))),
                    None => {
                        let names: Vec<&str> = self.catalog.segments.iter().map(|s| s.name.as_str()).collect();
                        let mut p = Problem::error(
                            ErrorKind::UnknownObject,
                            *span,
                            format!("segment '{segment}' does not exist for source {}", self.catalog.source.display()),
                        );
                        if let Some(s) = suggest(segment, names) {
                            p = p.with_hint(format!("did you mean '{s}'?"));
                        }
                        self.push(p);
                        None
                    }
                }
            }
        }
    }

    fn filter(&mut self, filter: Option<&Expr>, rel: &'c Relation) -> Option<Option<Box<Pred>>> {
        match filter {
            None => Some(None),
            Some(f) => Some(Some(Box::new(self.expr(f, &Scope::Related(rel))?))),
        }
    }

    fn relation(&mut self, name: &str, span: Span, scope: &Scope<'c>) -> Option<&'c Relation> {
        if let Scope::Related(r) = scope {
            return self.err(ErrorKind::Syntax, span, format!("relations cannot be nested: {name} inside {}", r.name));
        }
        if let Some(r) = self.catalog.relation(name) {
            return Some(r);
        }
        let mut p = Problem::error(
            ErrorKind::UnknownObject,
            span,
            format!("relation \"{name}\" is not registered for {}", self.catalog.source.display()),
        );
        let names = self.catalog.relations.iter().map(|r| r.name.as_str());
        p = match suggest(name, names) {
            Some(s) => p.with_hint(format!("did you mean \"{s}\"?")),
            None => p.with_hint("register it with segments.register_relation()"),
        };
        self.push(p);
        None
    }

    fn table(&self, scope: &Scope<'c>) -> &'c Table {
        match scope {
            Scope::Source => &self.catalog.source,
            Scope::Related(r) => &r.table,
        }
    }

    fn operand(&mut self, o: &Operand, scope: &Scope<'c>) -> Option<Typed> {
        match o {
            Operand::Field { path, span } => self.field(path, *span, scope),
            Operand::Aggregate { func, relation, column, filter, span } => {
                let rel = self.relation(&relation.name, relation.span, scope)?;
                let column = match column {
                    None => None,
                    Some(c) => {
                        let col = self.column_of(&rel.table, &c.name, c.span, &format!("relation {}", rel.name))?;
                        let ok = match func {
                            AggFunc::Sum | AggFunc::Avg => col.ty.is_number(),
                            _ => col.ty.is_ordered(),
                        };
                        if !ok {
                            let need = if matches!(func, AggFunc::Sum | AggFunc::Avg) {
                                "a numeric column"
                            } else {
                                "a number, text, date or timestamp column"
                            };
                            return self.err(
                                ErrorKind::TypeMismatch,
                                *span,
                                format!(
                                    "{} needs {need}; {}.{} is {}",
                                    func.keyword(),
                                    rel.name,
                                    col.name,
                                    col.ty.describe()
                                ),
                            );
                        }
                        Some(col.clone())
                    }
                };
                let filter = self.filter(filter.as_deref(), rel)?;
                let ty = match (func, &column) {
                    (AggFunc::Count, _) => Ty::Integer,
                    (AggFunc::Sum | AggFunc::Avg, _) => Ty::Numeric,
                    (_, Some(c)) => c.ty.clone(),
                    (_, None) => unreachable!("the parser requires a column for SUM/MIN/MAX/AVG"),
                };
                Some(Typed {
                    kind: OperandKind::Aggregate { func: *func, relation: Box::new(rel.clone()), column, filter },
                    ty,
                    nullable: *func != AggFunc::Count,
                })
            }
        }
    }

    fn column_of(&mut self, table: &'c Table, name: &str, span: Span, whose: &str) -> Option<&'c Column> {
        if let Some(c) = table.column(name) {
            return Some(c);
        }
        let mut p = Problem::error(ErrorKind::UnknownColumn, span, format!("column \"{name}\" does not exist in {whose}"));
        if let Some(s) = suggest(name, table.column_names()) {
            p = p.with_hint(format!("did you mean \"{s}\"?"));
        }
        self.push(p);
        None
    }

    fn field(&mut self, path: &[crate::ast::Name], span: Span, scope: &Scope<'c>) -> Option<Typed> {
        let table = self.table(scope);
        let first = &path[0];
        let (base, rest) = if let Some(c) = table.column(&first.name) {
            (Typed { kind: OperandKind::Column(c.clone()), ty: c.ty.clone(), nullable: !c.not_null }, &path[1..])
        } else if let (Scope::Source, Some(l), true) = (scope, self.catalog.lookup(&first.name), path.len() > 1) {
            let c = self.column_of(&l.target, &path[1].name, path[1].span, &format!("lookup {}", l.name))?;
            let kind = OperandKind::LookupColumn { lookup: Box::new(l.clone()), column: c.clone() };
            // No matching row (NULL via column) gives NULL, whatever the column.
            (Typed { kind, ty: c.ty.clone(), nullable: true }, &path[2..])
        } else {
            let whose = match scope {
                Scope::Source => format!("source {}", table.display()),
                Scope::Related(r) => format!("relation {} ({})", r.name, r.table.display()),
            };
            let mut candidates: Vec<&str> = table.column_names().collect();
            if let Scope::Source = scope {
                candidates.extend(self.catalog.lookups.iter().map(|l| l.name.as_str()));
            }
            let what = if path.len() > 1 { "column or lookup" } else { "column" };
            let mut p = Problem::error(
                ErrorKind::UnknownColumn,
                first.span,
                format!("{what} \"{}\" does not exist in {whose}", first.name),
            );
            if let Some(s) = suggest(&first.name, candidates) {
                p = p.with_hint(format!("did you mean \"{s}\"?"));
            } else if let (Scope::Source, Some(_)) = (scope, self.catalog.relation(&first.name)) {
                p = p.with_hint(format!("{} is a relation: use ANY {0} (…), NO {0}, COUNT {0} or SUM {0}.column", first.name));
            }
            self.push(p);
            return None;
        };
        if rest.is_empty() {
            return Some(base);
        }
        if base.ty != Ty::Jsonb {
            return self.err(
                ErrorKind::TypeMismatch,
                span,
                format!("{} is {}; only jsonb columns have paths like .{}", path[0].name, base.ty.describe(), rest[0].name),
            );
        }
        Some(Typed {
            kind: OperandKind::JsonPath { base: Box::new(base), path: rest.iter().map(|n| n.name.clone()).collect() },
            ty: Ty::Jsonb,
            nullable: true,
        })
    }

    fn mismatch<T>(&mut self, span: Span, msg: String, hint: Option<&str>) -> Option<T> {
        let mut p = Problem::error(ErrorKind::TypeMismatch, span, msg);
        if let Some(h) = hint {
            p = p.with_hint(h);
        }
        self.push(p);
        None
    }

    /// Whether `v` may be compared with an operand of type `ty` using `cmp`.
    fn value_fits(&mut self, ty: &Ty, v: &Value, ordered: bool, operand: Span) -> Option<()> {
        let ok = match ty {
            Ty::Text | Ty::Enum => matches!(v, Value::String { .. }),
            Ty::Integer | Ty::Numeric => matches!(v, Value::Number { .. }),
            Ty::Bool => matches!(v, Value::Boolean { .. }) && !ordered,
            Ty::Date | Ty::Timestamp | Ty::TimestampTz => v.is_time(),
            Ty::Uuid => matches!(v, Value::String { .. }) && !ordered,
            Ty::Jsonb => match v {
                Value::String { .. } | Value::Number { .. } => true,
                Value::Boolean { .. } => !ordered,
                _ => false,
            },
            Ty::Array(_) => false,
            Ty::Other => matches!(v, Value::String { .. }) && !ordered,
        };
        if !ok {
            let hint = match (ty, v) {
                (Ty::Array(_), _) => Some("test arrays with CONTAINS, CONTAINS ANY (…), CONTAINS ALL (…) or IS EMPTY"),
                (Ty::Integer | Ty::Numeric, Value::String { .. }) => Some("write numbers without quotes"),
                (Ty::Text, Value::Number { .. }) => Some("write text values in single quotes"),
                (Ty::Bool, _) => Some("booleans are tested with = true, = false or by naming the column alone"),
                (Ty::Jsonb, Value::Date { .. } | Value::Timestamp { .. } | Value::Instant { .. } | Value::Relative { .. }) => {
                    Some("jsonb values compare as text, number or boolean")
                }
                _ => None,
            };
            let how = if ordered { "ordered against" } else { "compared with" };
            return self.mismatch(operand.to(v.span()), format!("{} cannot be {how} {}", ty.describe(), v.describe()), hint);
        }
        if let (Ty::Uuid, Value::String { value, span }) = (ty, v) {
            if !is_uuid(value) {
                self.push(Problem::error(ErrorKind::InvalidValue, *span, format!("'{value}' is not a valid uuid")));
                return None;
            }
        }
        Some(())
    }

    fn test(&mut self, o: &Typed, t: &Test, operand: Span, whole: Span) -> Option<()> {
        let ty = &o.ty;
        match t {
            Test::Compare { cmp, value } => {
                let ordered = !matches!(cmp, Cmp::Eq | Cmp::Ne);
                self.value_fits(ty, value, ordered, operand)?;
                if let (OperandKind::Aggregate { func: AggFunc::Count, .. }, Value::Number { value, span }) = (&o.kind, value) {
                    if value.contains('.') || value.starts_with('-') {
                        self.push(Problem::warning(*span, format!("COUNT is a whole, non-negative number; compared with {value}")));
                    }
                }
                if let (Cmp::Eq, Value::String { value, span }, Ty::Text) = (cmp, value, ty) {
                    if value.is_empty() {
                        self.push(
                            Problem::warning(*span, "= '' matches empty strings only, not NULL")
                                .with_hint("IS EMPTY matches both"),
                        );
                    }
                }
                Some(())
            }
            Test::In { values, .. } => {
                let mut ok = Some(());
                for v in values {
                    ok = ok.and(self.value_fits(ty, v, false, operand));
                }
                ok
            }
            Test::Between { low, high, .. } => {
                self.value_fits(ty, low, true, operand).and(self.value_fits(ty, high, true, operand))?;
                let reversed = match (low, high) {
                    (Value::Number { value: a, .. }, Value::Number { value: b, .. }) => {
                        a.parse::<f64>().ok().zip(b.parse::<f64>().ok()).is_some_and(|(a, b)| a > b)
                    }
                    (Value::Date { value: a, .. }, Value::Date { value: b, .. }) => a > b,
                    (Value::String { value: a, .. }, Value::String { value: b, .. }) => a > b,
                    _ => false,
                };
                if reversed {
                    self.push(
                        Problem::warning(low.span().to(high.span()), "BETWEEN bounds are reversed: nothing matches")
                            .with_hint("write the lower bound first"),
                    );
                }
                Some(())
            }
            Test::IsNull { .. } | Test::IsEmpty { .. } => Some(()),
            Test::Text { text_op, value, .. } => self.text_test(o, *text_op, value, operand),
            Test::ContainsSet { quantifier, values, .. } => {
                let elem = match ty {
                    Ty::Array(e) => (**e).clone(),
                    Ty::Jsonb => Ty::Jsonb,
                    _ => {
                        let q = if *quantifier == Quantifier::Any { "ANY" } else { "ALL" };
                        return self.mismatch(
                            whole,
                            format!("CONTAINS {q} needs an array or jsonb operand; this one is {}", ty.describe()),
                            Some("for text, combine CONTAINS conditions with OR / AND"),
                        );
                    }
                };
                let mut ok = Some(());
                for v in values {
                    ok = ok.and(self.value_fits(&elem, v, false, operand));
                }
                ok
            }
            Test::Window { .. } => {
                if !ty.is_time() {
                    return self.mismatch(
                        whole,
                        format!("WITHIN / OLDER THAN need a date or timestamp; this operand is {}", ty.describe()),
                        None,
                    );
                }
                Some(())
            }
            Test::Moment { moment, value, .. } => {
                if !ty.is_time() {
                    let kw = if *moment == Moment::Before { "BEFORE" } else { "AFTER" };
                    return self.mismatch(
                        whole,
                        format!("{kw} needs a date or timestamp; this operand is {}", ty.describe()),
                        Some("compare numbers and text with < and >"),
                    );
                }
                self.value_fits(ty, value, true, operand)
            }
            Test::IsTrue => {
                if !matches!(ty, Ty::Bool | Ty::Jsonb) {
                    return self.mismatch(
                        whole,
                        format!("a condition needs an operator here: this operand is {}, not boolean", ty.describe()),
                        Some("for example: = 'value', IS NOT NULL, CONTAINS 'x'"),
                    );
                }
                Some(())
            }
        }
    }

    fn text_test(&mut self, o: &Typed, op: TextOp, value: &Value, operand: Span) -> Option<()> {
        let ty = &o.ty;
        match (op, ty) {
            (TextOp::Contains, Ty::Array(elem)) => return self.value_fits(&elem.clone(), value, false, operand),
            (TextOp::Contains, Ty::Jsonb) => return self.value_fits(ty, value, false, operand),
            (_, Ty::Text | Ty::Enum | Ty::Jsonb | Ty::Uuid | Ty::Other) => {}
            _ => {
                return self.mismatch(
                    operand.to(value.span()),
                    format!("{} needs text; this operand is {}", op.keyword(), ty.describe()),
                    None,
                )
            }
        }
        let Value::String { value: text, span } = value else {
            return self.mismatch(value.span(), format!("{} takes a 'string', not {}", op.keyword(), value.describe()), None);
        };
        if op == TextOp::Like || op == TextOp::Ilike {
            if !text.contains(['%', '_']) {
                self.push(
                    Problem::warning(*span, format!("{} pattern '{text}' has no % or _ wildcard", op.keyword()))
                        .with_hint("CONTAINS, STARTS WITH and ENDS WITH need no wildcards"),
                );
            }
        }
        Some(())
    }
}

fn is_uuid(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let dashes_ok = s.len() == 32 || (s.len() == 36 && [8, 13, 18, 23].iter().all(|&i| s.as_bytes()[i] == b'-'));
    dashes_ok && hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

impl Pred {
    /// Ids of the segments referenced with `IN SEGMENT`.
    pub fn segments(&self) -> Vec<i64> {
        fn walk(p: &Pred, out: &mut Vec<i64>) {
            match p {
                Pred::And(a) | Pred::Or(a) => a.iter().for_each(|x| walk(x, out)),
                Pred::Not(x) => walk(x, out),
                Pred::InSegment(s) => {
                    if !out.contains(&s.id) {
                        out.push(s.id)
                    }
                }
                Pred::Test { .. } | Pred::Exists { .. } => {}
            }
        }
        let mut out = vec![];
        walk(self, &mut out);
        out
    }
}

impl Pred {
    /// `(schema, table, column)` of every column the predicate reads, the
    /// columns that tie rows together included (relation contact columns,
    /// lookup via and target keys), so that a write changing none of them
    /// cannot change membership.
    pub fn columns(&self, source: &crate::model::Table) -> Vec<(String, String, String)> {
        type Out = Vec<(String, String, String)>;
        fn add(t: &crate::model::Table, column: &str, out: &mut Out) {
            let k = (t.schema.clone(), t.name.clone(), column.to_string());
            if !out.contains(&k) {
                out.push(k);
            }
        }
        fn operand(o: &Typed, scope: &crate::model::Table, source: &crate::model::Table, out: &mut Out) {
            match &o.kind {
                OperandKind::Column(c) => add(scope, &c.name, out),
                OperandKind::LookupColumn { lookup, column } => {
                    add(source, &lookup.via_column, out);
                    add(&lookup.target, &lookup.target_key, out);
                    add(&lookup.target, &column.name, out);
                }
                OperandKind::JsonPath { base, .. } => operand(base, scope, source, out),
                OperandKind::Aggregate { relation, column, filter, .. } => {
                    add(&relation.table, &relation.contact_column, out);
                    if let Some(c) = column {
                        add(&relation.table, &c.name, out);
                    }
                    if let Some(f) = filter {
                        walk(f, &relation.table, source, out);
                    }
                }
            }
        }
        fn walk(p: &Pred, scope: &crate::model::Table, source: &crate::model::Table, out: &mut Out) {
            match p {
                Pred::And(a) | Pred::Or(a) => a.iter().for_each(|x| walk(x, scope, source, out)),
                Pred::Not(x) => walk(x, scope, source, out),
                Pred::Test { operand: o, .. } => operand(o, scope, source, out),
                Pred::Exists { relation, filter, .. } => {
                    add(&relation.table, &relation.contact_column, out);
                    if let Some(f) = filter {
                        walk(f, &relation.table, source, out);
                    }
                }
                Pred::InSegment(_) => {}
            }
        }
        let mut out = vec![];
        walk(self, source, source, &mut out);
        out
    }
}

impl Pred {
    /// The lookups the predicate reads, each once, in the order met.
    pub fn lookups(&self) -> Vec<Lookup> {
        fn operand(o: &Typed, out: &mut Vec<Lookup>) {
            match &o.kind {
                OperandKind::LookupColumn { lookup, .. } => {
                    if !out.iter().any(|l| l.name == lookup.name) {
                        out.push((**lookup).clone())
                    }
                }
                OperandKind::JsonPath { base, .. } => operand(base, out),
                OperandKind::Column(_) | OperandKind::Aggregate { .. } => {}
            }
        }
        fn walk(p: &Pred, out: &mut Vec<Lookup>) {
            match p {
                Pred::And(a) | Pred::Or(a) => a.iter().for_each(|x| walk(x, out)),
                Pred::Not(x) => walk(x, out),
                Pred::Test { operand: o, .. } => operand(o, out),
                Pred::Exists { .. } | Pred::InSegment(_) => {}
            }
        }
        let mut out = vec![];
        walk(self, &mut out);
        out
    }
}

impl Pred {
    /// Whether the predicate reads nothing but the source row itself: no
    /// relation, lookup or other segment. Such a predicate can be evaluated on
    /// a row image alone, without asking the database anything.
    pub fn row_local(&self) -> bool {
        fn operand(o: &Typed) -> bool {
            match &o.kind {
                OperandKind::Column(_) => true,
                OperandKind::JsonPath { base, .. } => operand(base),
                OperandKind::LookupColumn { .. } | OperandKind::Aggregate { .. } => false,
            }
        }
        match self {
            Pred::And(a) | Pred::Or(a) => a.iter().all(Pred::row_local),
            Pred::Not(x) => x.row_local(),
            Pred::Test { operand: o, .. } => operand(o),
            Pred::Exists { .. } | Pred::InSegment(_) => false,
        }
    }
}
