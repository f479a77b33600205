//! Row-local predicates evaluated in process.
//!
//! A segment whose definition reads nothing but the contact's own row
//! (`Pred::row_local`, not time-relative) can only change membership when
//! that row changes, and its answer for a row image needs no query. The
//! UPDATE row trigger evaluates such predicates on the old and the new image
//! with PostgreSQL's own expression machinery (the same predicate SQL the
//! recompute runs, parsed, planned and compiled once per backend), and only
//! a membership that actually flips costs a statement.

use pgrx::pg_sys;
use pgrx::PgMemoryContexts;
use std::ffi::CString;

/// Compiled predicates over one table's row type, in their own memory
/// context, freed with it.
pub struct RowFilters {
    cxt: pg_sys::MemoryContext,
    econtext: *mut pg_sys::ExprContext,
    slot: *mut pg_sys::TupleTableSlot,
    states: Vec<*mut pg_sys::ExprState>,
}

impl RowFilters {
    /// `predicates` are WHERE predicates over the row `"s"` of `table` (a
    /// qualified name) whose rows have the descriptor `desc`.
    ///
    /// # Safety
    /// `desc` must be the tuple descriptor of `table`; runs inside a
    /// transaction.
    pub unsafe fn new(table: &str, desc: pg_sys::TupleDesc, predicates: &[String]) -> Self {
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
        let mut filters = RowFilters { cxt, econtext: std::ptr::null_mut(), slot: std::ptr::null_mut(), states: vec![] };
        PgMemoryContexts::For(cxt).switch_to(|_| unsafe {
            let desc = pg_sys::CreateTupleDescCopy(desc);
            filters.slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsHeapTuple);
            filters.econtext = pg_sys::CreateStandaloneExprContext();
            for p in predicates {
                filters.states.push(compile(table, p));
            }
        });
        filters
    }

    /// Whether `tuple` satisfies each predicate (NULL counts as false, as in
    /// a WHERE clause).
    ///
    /// # Safety
    /// `tuple` must be a row of the table the filters were built for.
    pub unsafe fn matches(&self, tuple: pg_sys::HeapTuple) -> Vec<bool> {
        unsafe {
            pg_sys::ExecStoreHeapTuple(tuple, self.slot, false);
            (*self.econtext).ecxt_scantuple = self.slot;
            let per_tuple = (*self.econtext).ecxt_per_tuple_memory;
            // One guard (a sigsetjmp) for all predicates instead of one per
            // predicate. Nothing in the guarded frame has a destructor for an
            // error to skip, and nothing in it may panic: a panic would leave
            // PostgreSQL's exception stack pointing into a dead frame.
            let mut out = vec![false; self.states.len()];
            let results = out.as_mut_ptr();
            let (states, econtext) = (self.states.as_slice(), self.econtext);
            PgMemoryContexts::For(per_tuple).switch_to(|_| {
                pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
                    for (i, &state) in states.iter().enumerate() {
                        // Read at every call: the first call swaps in the
                        // interpreter proper. SAFETY: ExecInitExpr always sets
                        // it, and PostgreSQL only ever replaces it.
                        let eval = (*state).evalfunc.unwrap_unchecked();
                        let mut isnull = false;
                        let value = eval(state, econtext, &mut isnull);
                        *results.add(i) = !isnull && value.value() != 0;
                    }
                })
            });
            pg_sys::ExecClearTuple(self.slot);
            pg_sys::MemoryContextReset(per_tuple);
            out
        }
    }
}

/// Parses `SELECT FROM table AS "s" WHERE predicate` and compiles its
/// WHERE clause, planned as an expression (constants folded, operator
/// functions looked up), in the current memory context.
unsafe fn compile(table: &str, predicate: &str) -> *mut pg_sys::ExprState {
    let sql = CString::new(format!("SELECT FROM {table} AS \"s\" WHERE {predicate}")).expect("SQL has no NUL byte");
    unsafe {
        let raw = pg_sys::raw_parser(sql.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        let stmt = (*(*raw).elements).ptr_value as *mut pg_sys::RawStmt;
        let queries = pg_sys::pg_analyze_and_rewrite_fixedparams(stmt, sql.as_ptr(), std::ptr::null(), 0, std::ptr::null_mut());
        let query = (*(*queries).elements).ptr_value as *mut pg_sys::Query;
        let quals = (*(*query).jointree).quals as *mut pg_sys::Expr;
        let planned = pg_sys::expression_planner(quals);
        pg_sys::ExecInitExpr(planned, std::ptr::null_mut())
    }
}

impl Drop for RowFilters {
    fn drop(&mut self) {
        // SAFETY: the context and everything in it belong to this value.
        unsafe { pg_sys::MemoryContextDelete(self.cxt) };
    }
}
