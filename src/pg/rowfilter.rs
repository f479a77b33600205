//! Row-local predicates evaluated in process.
//!
//! A segment whose definition reads nothing but the contact's own row
//! (`Pred::row_local`, not time-relative) can only change membership when
//! that row changes, and its answer for a row image needs no query. The
//! UPDATE row trigger asks which of them the change flips (`flips`): those
//! that read a changed value, evaluated on the old and the new image.
//!
//! Each predicate is the same SQL the recompute runs, parsed and planned by
//! PostgreSQL once per backend. The planned tree is then evaluated here for
//! the node kinds whose meaning is a plain comparison of a column with
//! constants (integer comparisons, text equality under a deterministic
//! collation, `= ANY` / `<> ALL` over constant arrays, NULL tests, AND, OR,
//! NOT, boolean COALESCE), where PostgreSQL's interpreter spent most of its
//! time in call overhead (bench/findings.md). Any other subtree keeps PostgreSQL's compiled
//! expression, so every predicate is evaluated, only not always natively.

use pgrx::pg_sys;
use pgrx::PgMemoryContexts;
use std::ffi::CString;

/// Compiled predicates over one table's row type, in their own memory
/// context, freed with it.
pub struct RowFilters {
    cxt: pg_sys::MemoryContext,
    econtext: *mut pg_sys::ExprContext,
    slot: *mut pg_sys::TupleTableSlot,
    /// The second image of `flips`.
    other: *mut pg_sys::TupleTableSlot,
    predicates: Vec<Node>,
    /// The highest attribute number a native node reads (from `reads`).
    columns: i32,
    /// What each predicate reads (`flips`).
    reads: Reads,
}

/// Which predicates two images of a row can give different values, found
/// without evaluating them: a predicate whose every node reads the same
/// values in both gives the same value. Without this, an UPDATE of one
/// column evaluated every predicate on both images; a comparison
/// of an integer column with a constant changes value only if the constant
/// lies between the column's old and new value, so of 100 range segments on
/// `score` a change of the score reaches one or two.
#[derive(Default)]
struct Reads {
    /// Predicates with a subtree PostgreSQL evaluates that reads the whole
    /// row: always evaluated.
    opaque: Vec<usize>,
    columns: Vec<ColumnReads>,
    /// The columns subtrees PostgreSQL evaluates (`Node::Pg`) read: such a
    /// subtree is a function of them (a row filter holds nothing volatile
    /// or time-relative), so it keeps its value while their bytes stay.
    evaluated: Vec<EvaluatedReads>,
}

struct EvaluatedReads {
    /// 0-based.
    column: usize,
    byval: bool,
    len: i16,
    /// The predicates with such a subtree reading the column (sorted).
    readers: Vec<usize>,
}

struct ColumnReads {
    /// 0-based.
    column: usize,
    kind: Kind,
    /// Every predicate with a native node reading the column (sorted).
    readers: Vec<usize>,
    /// For an integer column, the constants it is compared with, each with
    /// its predicate, sorted.
    constants: Vec<(i64, usize)>,
}

/// How the nodes read a column, which says when its two values count as
/// the same for them.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Only whether it is NULL (`Node::IsNull`).
    Nullness,
    /// Integer comparisons (and NULL tests): decided by `constants`.
    Int(pg_sys::Oid),
    /// Text equality: the same bytes.
    Text,
    /// A boolean column.
    Bool,
    /// Read more than one way: taken for changed whenever both are set.
    Mixed,
}

/// A predicate's planned tree, as evaluated here. `column`: an index into
/// the row's deformed values (attribute number − 1).
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// COALESCE of booleans: the first argument that is not NULL.
    Coalesce(Vec<Node>),
    Const(Option<bool>),
    /// A boolean column.
    Column(usize),
    IsNull { column: usize, negated: bool },
    /// `column op value` over integers.
    Int { column: usize, ty: pg_sys::Oid, cmp: Cmp, value: i64 },
    /// `column = value` over text (`negated`: `<>`).
    Text { column: usize, value: Box<[u8]>, negated: bool },
    /// `column = ANY (values)` (`all_differ`: `column <> ALL (values)`).
    IntIn { column: usize, ty: pg_sys::Oid, set: Set<i64> },
    TextIn { column: usize, set: Set<Box<[u8]>> },
    /// Any other subtree, compiled by PostgreSQL, with the columns it reads
    /// (None: the whole row).
    Pg { state: *mut pg_sys::ExprState, columns: Option<Vec<usize>> },
}

/// How a column's datum is read.
#[derive(Clone, Copy)]
enum Scalar {
    /// int2, int4 or int8, compared as i64 (cross-type operators of the
    /// integer family compare the widened values).
    Int(pg_sys::Oid),
    /// text (or varchar, relabelled), compared for byte equality: what
    /// `texteq` does under a deterministic collation.
    Text,
}

#[derive(Clone, Copy, PartialEq)]
enum Cmp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    Ne,
}

/// The constants of `= ANY` / `<> ALL`.
struct Set<T> {
    values: Vec<T>,
    has_null: bool,
    all_differ: bool,
}

impl<T> Set<T> {
    /// The test's value, given `found`, which tells whether the operand
    /// equals one of the values (None: the operand is NULL); as
    /// ExecEvalScalarArrayOp, an empty array decides even for a NULL operand.
    #[inline]
    fn test(&self, found: Option<impl FnOnce(&[T]) -> bool>) -> Option<bool> {
        if self.values.is_empty() && !self.has_null {
            return Some(self.all_differ);
        }
        match (found?(&self.values), self.has_null) {
            (true, _) => Some(!self.all_differ),
            (false, true) => None,
            (false, false) => Some(self.all_differ),
        }
    }
}

impl RowFilters {
    /// `predicates` are WHERE predicates over the row `"s"` of `table` (a
    /// qualified name) whose rows have the descriptor `desc`.
    ///
    /// `row_type` must be the row type of `table`; runs inside a
    /// transaction.
    pub fn new(table: &str, row_type: super::trigger::RowType<'_>, predicates: &[String]) -> Self {
        let desc = row_type.desc;
        // SAFETY: a memory context of its own, deleted by Drop.
        let cxt = unsafe {
            pg_sys::AllocSetContextCreateInternal(
                pg_sys::TopMemoryContext,
                c"pg_segments row filters".as_ptr(),
                pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
                pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
            )
        };
        // Owned by the context from here on: an error below frees nothing
        // twice, and the context is reclaimed by Drop.
        let mut filters = RowFilters {
            cxt,
            econtext: std::ptr::null_mut(),
            slot: std::ptr::null_mut(),
            other: std::ptr::null_mut(),
            predicates: vec![],
            columns: 0,
            reads: Reads::default(),
        };
        // SAFETY: allocations in the filters' own context.
        unsafe { PgMemoryContexts::For(cxt).switch_to(|_| {
            // With its constraints: rows written before an `ADD COLUMN …
            // DEFAULT` take the default from the descriptor's missing values.
            let desc = pg_sys::CreateTupleDescCopyConstr(desc);
            filters.slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsHeapTuple);
            filters.other = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsHeapTuple);
            filters.econtext = pg_sys::CreateStandaloneExprContext();
            let natts = (*desc).natts;
            for chunk in predicates.chunks(PLANNED_TOGETHER) {
                for expr in plan(table, chunk) {
                    filters.predicates.push(Node::of(expr, natts));
                }
            }
        }) };
        // SAFETY: the descriptor the predicates were planned over.
        filters.reads = unsafe { Reads::of(&filters.predicates, desc) };
        filters.columns = filters.reads.last_column();
        filters
    }

    /// Whether `tuple` satisfies each predicate (NULL counts as false, as in
    /// a WHERE clause).
    ///
    /// `row` must be a row of the table the filters were built for.
    pub fn matches(&self, row: super::trigger::Row<'_>) -> Vec<bool> {
        let tuple = row.tuple;
        // SAFETY: a row of this table's type, stored into the filters' slot.
        unsafe {
            pg_sys::ExecStoreHeapTuple(tuple, self.slot, false);
            (*self.econtext).ecxt_scantuple = self.slot;
            let per_tuple = (*self.econtext).ecxt_per_tuple_memory;
            // One guard (a sigsetjmp) for all predicates instead of one per
            // predicate. Nothing in the guarded frame has a destructor for an
            // error to skip, and nothing in it may panic: a panic would leave
            // PostgreSQL's exception stack pointing into a dead frame.
            let mut out = vec![false; self.predicates.len()];
            let results = out.as_mut_ptr();
            let row = Row::of(self.slot, self.econtext);
            let (predicates, columns, slot) = (self.predicates.as_slice(), self.columns, self.slot);
            PgMemoryContexts::For(per_tuple).switch_to(|_| {
                pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
                    if columns > 0 {
                        pg_sys::slot_getsomeattrs_int(slot, columns);
                    }
                    for (i, p) in predicates.iter().enumerate() {
                        *results.add(i) = p.eval(&row) == Some(true);
                    }
                })
            });
            pg_sys::ExecClearTuple(self.slot);
            pg_sys::MemoryContextReset(per_tuple);
            out
        }
    }

    /// The predicates whose value differs between the row images `old` and
    /// `new` (NULL counting as false), each with its value on `new`, in
    /// order. Only those `Reads` cannot rule out are evaluated.
    ///
    /// Both rows must be rows of the table the filters were built for.
    pub fn flips(&self, old: super::trigger::Row<'_>, new: super::trigger::Row<'_>) -> Vec<(usize, bool)> {
        let (old, new) = (old.tuple, new.tuple);
        // SAFETY: rows of this table's type, stored into the filters' slots.
        unsafe {
            pg_sys::ExecStoreHeapTuple(old, self.slot, false);
            pg_sys::ExecStoreHeapTuple(new, self.other, false);
            let per_tuple = (*self.econtext).ecxt_per_tuple_memory;
            let (before, after) = (Row::of(self.slot, self.econtext), Row::of(self.other, self.econtext));
            let (predicates, columns, reads) = (self.predicates.as_slice(), self.columns, &self.reads);
            let (econtext, slot, other) = (self.econtext, self.slot, self.other);
            // Guarded as in `matches`; what the guarded frames fill lives
            // outside them, so an error skips no destructor.
            let mut hit = vec![false; predicates.len()];
            let mut out = Vec::new();
            PgMemoryContexts::For(per_tuple).switch_to(|_| {
                pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
                    if columns > 0 {
                        pg_sys::slot_getsomeattrs_int(slot, columns);
                        pg_sys::slot_getsomeattrs_int(other, columns);
                    }
                    reads.candidates(&before, &after, &mut hit);
                });
                let candidates = (0..hit.len()).filter(|&i| hit[i]);
                let found = &mut out;
                pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
                    for i in candidates {
                        (*econtext).ecxt_scantuple = slot;
                        let was = predicates[i].eval(&before) == Some(true);
                        (*econtext).ecxt_scantuple = other;
                        let is = predicates[i].eval(&after) == Some(true);
                        if was != is {
                            found.push((i, is));
                        }
                    }
                })
            });
            pg_sys::ExecClearTuple(self.slot);
            pg_sys::ExecClearTuple(self.other);
            pg_sys::MemoryContextReset(per_tuple);
            out
        }
    }

    /// The predicates `flips` evaluates for the row images `old` and `new`
    /// (for tests).
    #[cfg(any(test, feature = "pg_test"))]
    pub fn candidates(&self, old: super::trigger::Row<'_>, new: super::trigger::Row<'_>) -> Vec<usize> {
        let mut hit = vec![false; self.predicates.len()];
        // SAFETY: as in `flips`.
        unsafe {
            pg_sys::ExecStoreHeapTuple(old.tuple, self.slot, false);
            pg_sys::ExecStoreHeapTuple(new.tuple, self.other, false);
            if self.columns > 0 {
                pg_sys::slot_getsomeattrs_int(self.slot, self.columns);
                pg_sys::slot_getsomeattrs_int(self.other, self.columns);
            }
            let (before, after) = (Row::of(self.slot, self.econtext), Row::of(self.other, self.econtext));
            self.reads.candidates(&before, &after, &mut hit);
            pg_sys::ExecClearTuple(self.slot);
            pg_sys::ExecClearTuple(self.other);
        }
        (0..hit.len()).filter(|&i| hit[i]).collect()
    }

    /// How many of the predicates are evaluated without PostgreSQL's
    /// expression interpreter (for tests).
    #[cfg(any(test, feature = "pg_test"))]
    pub fn native(&self) -> usize {
        self.predicates.iter().filter(|p| p.native()).count()
    }
}

/// The row a predicate is evaluated on: deformed up to
/// `RowFilters::columns`, and the expression context PostgreSQL's subtrees
/// read it from.
struct Row {
    values: *const pg_sys::Datum,
    nulls: *const bool,
    econtext: *mut pg_sys::ExprContext,
}

impl Row {
    /// The row in `slot` (deformed by the caller).
    unsafe fn of(slot: *mut pg_sys::TupleTableSlot, econtext: *mut pg_sys::ExprContext) -> Row {
        unsafe { Row { values: (*slot).tts_values, nulls: (*slot).tts_isnull, econtext } }
    }

    /// The value of a column `Node::of` checked, None for NULL.
    #[inline]
    unsafe fn get(&self, column: usize) -> Option<pg_sys::Datum> {
        unsafe {
            match *self.nulls.add(column) {
                true => None,
                false => Some(*self.values.add(column)),
            }
        }
    }
}

impl Reads {
    /// `desc`: the descriptor of the rows the predicates read.
    unsafe fn of(predicates: &[Node], desc: pg_sys::TupleDesc) -> Reads {
        let mut reads = Reads::default();
        for (i, p) in predicates.iter().enumerate() {
            p.visit(&mut |node| {
                let (column, kind, constants): (usize, Kind, &[i64]) = match node {
                    Node::Pg { columns: None, .. } => {
                        reads.opaque.push(i);
                        return;
                    }
                    Node::Pg { columns: Some(columns), .. } => {
                        for &column in columns {
                            let at = match reads.evaluated.iter().position(|c| c.column == column) {
                                Some(at) => at,
                                None => {
                                    // SAFETY: `column` is one of the descriptor's (`Node::of`).
                                    let attr = unsafe { &*(*desc).attrs.as_ptr().add(column) };
                                    let (byval, len) = (attr.attbyval, attr.attlen);
                                    reads.evaluated.push(EvaluatedReads { column, byval, len, readers: vec![] });
                                    reads.evaluated.len() - 1
                                }
                            };
                            reads.evaluated[at].readers.push(i);
                        }
                        return;
                    }
                    Node::And(_) | Node::Or(_) | Node::Not(_) | Node::Coalesce(_) | Node::Const(_) => return,
                    Node::IsNull { column, .. } => (*column, Kind::Nullness, &[]),
                    Node::Int { column, ty, value, .. } => (*column, Kind::Int(*ty), std::slice::from_ref(value)),
                    Node::IntIn { column, ty, set } => (*column, Kind::Int(*ty), &set.values),
                    Node::Text { column, .. } | Node::TextIn { column, .. } => (*column, Kind::Text, &[]),
                    Node::Column(column) => (*column, Kind::Bool, &[]),
                };
                let at = match reads.columns.iter().position(|c| c.column == column) {
                    Some(at) => at,
                    None => {
                        reads.columns.push(ColumnReads { column, kind, readers: vec![], constants: vec![] });
                        reads.columns.len() - 1
                    }
                };
                let c = &mut reads.columns[at];
                // One column is read one way (its type decides), but for
                // NULL tests; anything else would be read as changed.
                c.kind = match (c.kind, kind) {
                    (Kind::Nullness, k) | (k, Kind::Nullness) => k,
                    (a, b) if a == b => a,
                    _ => Kind::Mixed,
                };
                c.readers.push(i);
                c.constants.extend(constants.iter().map(|&v| (v, i)));
            });
        }
        reads.opaque.dedup();
        for c in &mut reads.columns {
            c.readers.dedup();
            c.constants.sort_unstable();
        }
        for c in &mut reads.evaluated {
            c.readers.dedup();
        }
        reads
    }

    /// The highest attribute number the native nodes or `evaluated` read.
    fn last_column(&self) -> i32 {
        let native = self.columns.iter().map(|c| c.column);
        native.chain(self.evaluated.iter().map(|c| c.column)).map(|c| c as i32 + 1).max().unwrap_or(0)
    }

    /// Marks in `hit` the predicates that may differ between the two images.
    ///
    /// # Safety
    /// As for `Node::eval`, on both rows.
    unsafe fn candidates(&self, before: &Row, after: &Row, hit: &mut [bool]) {
        self.opaque.iter().for_each(|&i| hit[i] = true);
        for c in &self.evaluated {
            let same = match unsafe { (before.get(c.column), after.get(c.column)) } {
                (None, None) => true,
                // SAFETY: two values of the column's type.
                (Some(a), Some(b)) => unsafe { super::trigger::same_datum_bytes(a, b, c.byval, c.len) },
                _ => false,
            };
            if !same {
                c.readers.iter().for_each(|&i| hit[i] = true);
            }
        }
        for c in &self.columns {
            let (a, b) = unsafe { (before.get(c.column), after.get(c.column)) };
            let readers: &[usize] = match (a, b) {
                (None, None) => &[],
                (Some(a), Some(b)) => match c.kind {
                    Kind::Nullness => &[],
                    Kind::Int(ty) => {
                        let (a, b) = (int(a, ty), int(b, ty));
                        if a != b {
                            // `x op v` for any op takes the same value for
                            // every x on one side of v: only a constant
                            // between the two values can tell them apart.
                            let (lo, hi) = (a.min(b), a.max(b));
                            let from = c.constants.partition_point(|&(v, _)| v < lo);
                            c.constants[from..].iter().take_while(|&&(v, _)| v <= hi).for_each(|&(_, i)| hit[i] = true);
                        }
                        &[]
                    }
                    Kind::Text if unsafe { text(a) == text(b) } => &[],
                    Kind::Bool if a.value() == b.value() => &[],
                    Kind::Text | Kind::Bool | Kind::Mixed => &c.readers,
                },
                _ => &c.readers,
            };
            readers.iter().for_each(|&i| hit[i] = true);
        }
    }
}

impl Node {
    /// Calls `f` with this node and every node under it.
    fn visit(&self, f: &mut impl FnMut(&Node)) {
        f(self);
        match self {
            Node::And(args) | Node::Or(args) | Node::Coalesce(args) => args.iter().for_each(|a| a.visit(f)),
            Node::Not(arg) => arg.visit(f),
            _ => {}
        }
    }

    /// The node for a planned boolean expression over the rows of a table
    /// with `natts` attributes, in the current memory context.
    unsafe fn of(expr: *mut pg_sys::Expr, natts: i32) -> Node {
        unsafe { Node::native_of(expr, natts) }.unwrap_or_else(|| unsafe {
            Node::Pg { columns: evaluated_columns(expr, natts), state: pg_sys::ExecInitExpr(expr, std::ptr::null_mut()) }
        })
    }

    unsafe fn native_of(expr: *mut pg_sys::Expr, natts: i32) -> Option<Node> {
        unsafe {
            let node = expr.cast::<pg_sys::Node>();
            match (*node).type_ {
                pg_sys::NodeTag::T_BoolExpr => {
                    let b = expr.cast::<pg_sys::BoolExpr>();
                    let mut args: Vec<Node> = list((*b).args).into_iter().map(|a| Node::of(a.cast(), natts)).collect();
                    // Cheapest first, so that a decided AND or OR skips
                    // the dearer tests: the order of evaluation is not
                    // SQL's to keep (PostgreSQL's planner reorders too).
                    args.sort_by_key(Node::cost);
                    match (*b).boolop {
                        pg_sys::BoolExprType::AND_EXPR => Some(Node::And(args)),
                        pg_sys::BoolExprType::OR_EXPR => Some(Node::Or(args)),
                        _ => args.into_iter().next().map(|a| Node::Not(Box::new(a))),
                    }
                }
                pg_sys::NodeTag::T_CoalesceExpr if (*expr.cast::<pg_sys::CoalesceExpr>()).coalescetype == pg_sys::BOOLOID => {
                    let args = list((*expr.cast::<pg_sys::CoalesceExpr>()).args);
                    Some(Node::Coalesce(args.into_iter().map(|a| Node::of(a.cast(), natts)).collect()))
                }
                pg_sys::NodeTag::T_Const if (*expr.cast::<pg_sys::Const>()).consttype == pg_sys::BOOLOID => {
                    let c = expr.cast::<pg_sys::Const>();
                    Some(Node::Const(if (*c).constisnull { None } else { Some((*c).constvalue.value() != 0) }))
                }
                pg_sys::NodeTag::T_Var if (*expr.cast::<pg_sys::Var>()).vartype == pg_sys::BOOLOID => {
                    column(expr, natts).map(|(c, _)| Node::Column(c))
                }
                pg_sys::NodeTag::T_NullTest => {
                    let t = expr.cast::<pg_sys::NullTest>();
                    let (c, _) = column((*t).arg, natts).filter(|_| !(*t).argisrow)?;
                    Some(Node::IsNull { column: c, negated: (*t).nulltesttype == pg_sys::NullTestType::IS_NOT_NULL })
                }
                pg_sys::NodeTag::T_OpExpr => {
                    let o = expr.cast::<pg_sys::OpExpr>();
                    let [left, right] = list((*o).args)[..] else { return None };
                    let (c, ty) = column(left.cast(), natts)?;
                    let (scalar, cmp) = operator((*o).opno, ty, (*o).inputcollid)?;
                    Some(match scalar {
                        Scalar::Int(ty) => Node::Int { column: c, ty, cmp, value: constant(right.cast(), int_key)?? },
                        Scalar::Text => Node::Text { column: c, value: constant(right.cast(), text_key)??, negated: cmp == Cmp::Ne },
                    })
                }
                pg_sys::NodeTag::T_ScalarArrayOpExpr => {
                    let o = expr.cast::<pg_sys::ScalarArrayOpExpr>();
                    let [left, right] = list((*o).args)[..] else { return None };
                    let (c, ty) = column(left.cast(), natts)?;
                    let (scalar, cmp) = operator((*o).opno, ty, (*o).inputcollid)?;
                    let all_differ = match ((*o).useOr, cmp) {
                        (true, Cmp::Eq) => false,
                        (false, Cmp::Ne) => true,
                        _ => return None,
                    };
                    Some(match scalar {
                        Scalar::Int(ty) => {
                            let (values, has_null) = array(right.cast(), int_key)?;
                            Node::IntIn { column: c, ty, set: Set { values, has_null, all_differ } }
                        }
                        Scalar::Text => {
                            let (values, has_null) = array(right.cast(), text_key)?;
                            Node::TextIn { column: c, set: Set { values, has_null, all_differ } }
                        }
                    })
                }
                _ => None,
            }
        }
    }

    /// A rough cost of evaluating the node, in integer comparisons.
    fn cost(&self) -> usize {
        match self {
            Node::And(args) | Node::Or(args) | Node::Coalesce(args) => args.iter().map(Node::cost).sum(),
            Node::Not(arg) => arg.cost(),
            Node::Const(_) | Node::Column(_) | Node::IsNull { .. } | Node::Int { .. } => 1,
            Node::Text { .. } => 3,
            Node::IntIn { set, .. } => 1 + set.values.len() / 4,
            Node::TextIn { set, .. } => 3 * set.values.len(),
            Node::Pg { .. } => 100,
        }
    }

    #[cfg(any(test, feature = "pg_test"))]
    fn native(&self) -> bool {
        match self {
            Node::And(args) | Node::Or(args) | Node::Coalesce(args) => args.iter().all(Node::native),
            Node::Not(arg) => arg.native(),
            Node::Pg { .. } => false,
            _ => true,
        }
    }

    /// The node's value on `row` (None: NULL), with SQL's three-valued logic
    /// and the operators' strictness.
    ///
    /// # Safety
    /// Inside a guard, in per-tuple memory, on a row deformed up to
    /// `RowFilters::columns`; must not panic.
    unsafe fn eval(&self, row: &Row) -> Option<bool> {
        unsafe {
            match self {
                Node::And(args) => decide(args, false, row),
                Node::Or(args) => decide(args, true, row),
                Node::Not(arg) => arg.eval(row).map(|b| !b),
                Node::Coalesce(args) => args.iter().find_map(|a| a.eval(row)),
                Node::Const(value) => *value,
                Node::Column(c) => row.get(*c).map(|d| d.value() != 0),
                Node::IsNull { column, negated } => Some(row.get(*column).is_none() != *negated),
                Node::Int { column, ty, cmp, value } => {
                    let x = int(row.get(*column)?, *ty);
                    Some(match cmp {
                        Cmp::Lt => x < *value,
                        Cmp::Le => x <= *value,
                        Cmp::Eq => x == *value,
                        Cmp::Ge => x >= *value,
                        Cmp::Gt => x > *value,
                        Cmp::Ne => x != *value,
                    })
                }
                Node::Text { column, value, negated } => Some((text(row.get(*column)?) == &value[..]) != *negated),
                Node::IntIn { column, ty, set } => set.test(row.get(*column).map(|d| move |v: &[i64]| v.contains(&int(d, *ty)))),
                Node::TextIn { column, set } => {
                    set.test(row.get(*column).map(|d| move |v: &[Box<[u8]>]| {
                        let x = text(d);
                        v.iter().any(|v| &v[..] == x)
                    }))
                }
                Node::Pg { state, .. } => {
                    // Read at every call: the first call swaps in the
                    // interpreter proper. SAFETY: ExecInitExpr always sets
                    // it, and PostgreSQL only ever replaces it.
                    let eval = (**state).evalfunc.unwrap_unchecked();
                    let mut isnull = false;
                    let value = eval(*state, row.econtext, &mut isnull);
                    if isnull { None } else { Some(value.value() != 0) }
                }
            }
        }
    }
}

/// AND (`decisive` false) or OR (true) of `args` in SQL's three-valued
/// logic: the decisive value as soon as one argument has it, else NULL if
/// one argument is NULL.
///
/// # Safety
/// As for `Node::eval`.
unsafe fn decide(args: &[Node], decisive: bool, row: &Row) -> Option<bool> {
    let mut result = Some(!decisive);
    for a in args {
        match unsafe { a.eval(row) } {
            Some(b) if b == decisive => return Some(decisive),
            None => result = None,
            Some(_) => {}
        }
    }
    result
}

/// The elements of a List of pointers.
unsafe fn list(l: *mut pg_sys::List) -> Vec<*mut std::ffi::c_void> {
    if l.is_null() {
        return vec![];
    }
    unsafe { (0..(*l).length as usize).map(|i| (*(*l).elements.add(i)).ptr_value).collect() }
}

/// The column (0-based) and type a plain column reference of the scanned
/// row reads, through a binary-compatible relabelling (varchar as text).
unsafe fn column(expr: *mut pg_sys::Expr, natts: i32) -> Option<(usize, pg_sys::Oid)> {
    unsafe {
        let mut expr = expr;
        let mut ty = None;
        if (*expr.cast::<pg_sys::Node>()).type_ == pg_sys::NodeTag::T_RelabelType {
            let r = expr.cast::<pg_sys::RelabelType>();
            ty = Some((*r).resulttype);
            expr = (*r).arg;
        }
        if (*expr.cast::<pg_sys::Node>()).type_ != pg_sys::NodeTag::T_Var {
            return None;
        }
        let v = expr.cast::<pg_sys::Var>();
        let attno = (*v).varattno as i32;
        if (*v).varlevelsup != 0 || attno < 1 || attno > natts {
            return None;
        }
        let ty = ty.unwrap_or((*v).vartype);
        // A relabelled column must be one read as text.
        if ty != (*v).vartype && !(ty == pg_sys::TEXTOID && (*v).vartype == pg_sys::VARCHAROID) {
            return None;
        }
        Some((attno as usize - 1, ty))
    }
}

/// What operator `opno` does with a column of type `ty` on its left, if it
/// is one evaluated here: a comparison of the integer btree family, or text
/// equality (or inequality) under a deterministic collation.
unsafe fn operator(opno: pg_sys::Oid, ty: pg_sys::Oid, collation: pg_sys::Oid) -> Option<(Scalar, Cmp)> {
    unsafe {
        let strategy = |family| match pg_sys::get_op_opfamily_strategy(opno, family) {
            0 => match pg_sys::get_op_opfamily_strategy(pg_sys::get_negator(opno), family) {
                3 => Some(Cmp::Ne),
                _ => None,
            },
            1 => Some(Cmp::Lt),
            2 => Some(Cmp::Le),
            3 => Some(Cmp::Eq),
            4 => Some(Cmp::Ge),
            5 => Some(Cmp::Gt),
            _ => None,
        };
        let (mut left, mut right) = (pg_sys::Oid::INVALID, pg_sys::Oid::INVALID);
        pg_sys::op_input_types(opno, &mut left, &mut right);
        let integer = |t| [pg_sys::INT2OID, pg_sys::INT4OID, pg_sys::INT8OID].contains(&t);
        if integer(left) && integer(right) && left == ty {
            return Some((Scalar::Int(ty), strategy(pg_sys::INTEGER_BTREE_FAM_OID)?));
        }
        if left == pg_sys::TEXTOID && right == pg_sys::TEXTOID && ty == pg_sys::TEXTOID && deterministic(collation) {
            return match strategy(pg_sys::TEXT_BTREE_FAM_OID)? {
                cmp @ (Cmp::Eq | Cmp::Ne) => Some((Scalar::Text, cmp)),
                _ => None,
            };
        }
        None
    }
}

unsafe fn deterministic(collation: pg_sys::Oid) -> bool {
    // The database's default collation is always deterministic (PostgreSQL
    // 15), and so are C and POSIX.
    const C: pg_sys::Oid = pg_sys::Oid::from_u32(950);
    const POSIX: pg_sys::Oid = pg_sys::Oid::from_u32(951);
    match collation {
        pg_sys::Oid::INVALID => false,
        pg_sys::DEFAULT_COLLATION_OID | C | POSIX => true,
        other => unsafe { pg_sys::get_collation_isdeterministic(other) },
    }
}

/// A constant's value as `read` reads a datum of its type (Some(None): a
/// NULL constant, which the planner folds away, so it is left to
/// PostgreSQL).
unsafe fn constant<T>(expr: *mut pg_sys::Expr, read: unsafe fn(pg_sys::Datum, pg_sys::Oid) -> Option<T>) -> Option<Option<T>> {
    unsafe {
        if (*expr.cast::<pg_sys::Node>()).type_ != pg_sys::NodeTag::T_Const {
            return None;
        }
        let c = expr.cast::<pg_sys::Const>();
        if (*c).constisnull {
            return Some(None);
        }
        Some(read((*c).constvalue, (*c).consttype))
    }
}

/// An integer constant of type `ty`, widened.
unsafe fn int_key(datum: pg_sys::Datum, ty: pg_sys::Oid) -> Option<i64> {
    Some(int(datum, ty))
}

/// A text constant's bytes, copied out of PostgreSQL's memory.
unsafe fn text_key(datum: pg_sys::Datum, ty: pg_sys::Oid) -> Option<Box<[u8]>> {
    (ty == pg_sys::TEXTOID).then(|| unsafe { text(datum) }.into())
}

/// The elements of a constant array as `read` reads them, and whether one
/// of them is NULL.
unsafe fn array<T>(expr: *mut pg_sys::Expr, read: unsafe fn(pg_sys::Datum, pg_sys::Oid) -> Option<T>) -> Option<(Vec<T>, bool)> {
    unsafe {
        if (*expr.cast::<pg_sys::Node>()).type_ != pg_sys::NodeTag::T_Const || (*expr.cast::<pg_sys::Const>()).constisnull {
            return None;
        }
        let a = pg_sys::pg_detoast_datum((*expr.cast::<pg_sys::Const>()).constvalue.cast_mut_ptr()).cast::<pg_sys::ArrayType>();
        let element = (*a).elemtype;
        let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
        pg_sys::get_typlenbyvalalign(element, &mut len, &mut byval, &mut align);
        let (mut datums, mut nulls, mut n) = (std::ptr::null_mut(), std::ptr::null_mut(), 0);
        pg_sys::deconstruct_array(a, element, len as i32, byval, align, &mut datums, &mut nulls, &mut n);
        let mut values = vec![];
        let mut has_null = false;
        for i in 0..n as usize {
            if *nulls.add(i) {
                has_null = true;
            } else {
                values.push(read(*datums.add(i), element)?);
            }
        }
        Some((values, has_null))
    }
}

/// The columns (0-based) a planned expression over the rows of a table with
/// `natts` attributes reads; None if it reads the whole row or a system
/// column.
unsafe fn evaluated_columns(expr: *mut pg_sys::Expr, natts: i32) -> Option<Vec<usize>> {
    let mut set: *mut pg_sys::Bitmapset = std::ptr::null_mut();
    let offset = pg_sys::FirstLowInvalidHeapAttributeNumber;
    let mut columns = vec![];
    unsafe {
        pg_sys::pull_varattnos(expr.cast(), 1, &mut set);
        let mut member = -1;
        loop {
            member = pg_sys::bms_next_member(set, member);
            if member < 0 {
                break;
            }
            let attnum = member + offset;
            if attnum <= 0 || attnum > natts {
                return None;
            }
            columns.push(attnum as usize - 1);
        }
    }
    Some(columns)
}

/// An integer datum of type `ty` (int2, int4 or int8), widened.
fn int(datum: pg_sys::Datum, ty: pg_sys::Oid) -> i64 {
    let raw = datum.value() as u64;
    match ty {
        pg_sys::INT2OID => raw as u16 as i16 as i64,
        pg_sys::INT4OID => raw as u32 as i32 as i64,
        _ => raw as i64,
    }
}

/// The bytes of a text datum, detoasted (in the current memory context)
/// when compressed or stored out of line.
///
/// # Safety
/// `datum` must be a text (or varchar) datum.
unsafe fn text<'a>(datum: pg_sys::Datum) -> &'a [u8] {
    unsafe {
        let mut p = datum.cast_mut_ptr::<pg_sys::varlena>();
        if pgrx::varlena::varatt_is_1b_e(p) || pgrx::varlena::varatt_is_4b_c(p) {
            p = pg_sys::pg_detoast_datum_packed(p);
        }
        std::slice::from_raw_parts(pgrx::varlena::vardata_any(p).cast(), pgrx::varlena::varsize_any_exhdr(p))
    }
}

/// Parses `SELECT FROM table AS "s" WHERE predicate` and plans its WHERE
/// clause as an expression (constants folded, operators looked up), in the
/// current memory context.
/// How many predicates one statement plans (`plan`): well below the 1,664
/// columns a target list may have.
const PLANNED_TOGETHER: usize = 500;

/// `predicates` over `table`'s rows (alias `s`), parsed, analysed and
/// planned as the columns of one statement: a tenant's part plans its ten
/// segments at once, and a statement each cost most of the part's build.
/// The cast makes each a boolean as a WHERE clause would (it adds no node
/// to one that is).
unsafe fn plan(table: &str, predicates: &[String]) -> Vec<*mut pg_sys::Expr> {
    let columns: Vec<String> = predicates.iter().map(|p| format!("({p})::pg_catalog.bool")).collect();
    let sql = CString::new(format!("SELECT {} FROM {table} AS \"s\"", columns.join(", "))).expect("SQL has no NUL byte");
    unsafe {
        let raw = pg_sys::raw_parser(sql.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        let stmt = (*(*raw).elements).ptr_value as *mut pg_sys::RawStmt;
        let queries = pg_sys::pg_analyze_and_rewrite_fixedparams(stmt, sql.as_ptr(), std::ptr::null(), 0, std::ptr::null_mut());
        let query = (*(*queries).elements).ptr_value as *mut pg_sys::Query;
        let list = (*query).targetList;
        (0..(*list).length as usize)
            .map(|i| {
                let entry = (*(*list).elements.add(i)).ptr_value as *mut pg_sys::TargetEntry;
                pg_sys::expression_planner((*entry).expr)
            })
            .collect()
    }
}

impl Drop for RowFilters {
    fn drop(&mut self) {
        // SAFETY: the context and everything in it belong to this value.
        unsafe { pg_sys::MemoryContextDelete(self.cxt) };
    }
}

/// For the in-database tests: `f` with the row type of table `relid` and a
/// copy of each of its rows (a heap scan under the latest snapshot).
#[cfg(any(test, feature = "pg_test"))]
pub fn with_table_rows<R>(relid: pg_sys::Oid, f: impl FnOnce(super::trigger::RowType<'_>, &[super::trigger::Row<'_>]) -> R) -> R {
    // SAFETY: rows of the table read by a heap scan and copied, described
    // by its descriptor while it stays open.
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as i32);
        let desc = (*rel).rd_att;
        let flags = pg_sys::ScanOptions::SO_TYPE_SEQSCAN | pg_sys::ScanOptions::SO_ALLOW_PAGEMODE;
        let scan = pg_sys::heap_beginscan(rel, pg_sys::GetLatestSnapshot(), 0, std::ptr::null_mut(), std::ptr::null_mut(), flags);
        let mut rows = vec![];
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            rows.push(super::trigger::Row::new(pg_sys::heap_copytuple(tuple), desc));
        }
        pg_sys::heap_endscan(scan);
        let result = f(super::trigger::RowType::new(desc), &rows);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as i32);
        result
    }
}
