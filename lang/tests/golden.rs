//! Golden tests: every case of `tests/golden/*.sdl` is run through the whole
//! core and the result compared with the reviewed `.out` file next to it.
//! `UPDATE_GOLDEN=1 cargo test --lib golden` rewrites the `.out` files; review
//! the diff before committing it.

use pretty_assertions::assert_eq;

use segments_lang::{codegen, format, parser, typecheck};
use support::catalog as testing;

mod support;

/// Cases are separated by lines of `====`.
fn cases(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split("\n====\n").map(|c| c.trim_end_matches('\n').to_string()).filter(|c| !c.trim().is_empty()).collect()
}

fn compare(path: &str, actual: String) {
    let out = path.replace(".sdl", ".out");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&out, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(expected, actual, "golden output of {path} differs (UPDATE_GOLDEN=1 rewrites it)");
}

fn root(file: &str) -> String {
    format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// Valid definitions: the JSON tree, the canonical text and the SQL.
#[test]
fn valid_definitions() {
    let path = root("valid.sdl");
    let cat = testing::catalog();
    let mut out = String::new();
    for case in cases(&path) {
        let expr = parser::parse(&case).unwrap_or_else(|p| panic!("{case}\n{:?}", p.locate(&case)));
        let tree = serde_json::to_string(&expr).unwrap();
        let text = format::format(&expr);
        let checked = typecheck::check(&expr, &cat).unwrap_or_else(|p| panic!("{case}\n{p:?}"));
        let sql = codegen::predicate(&checked.pred, "\"c\"", &cat.key);
        out.push_str(&format!("{case}\n---- tree\n{tree}\n---- text\n{text}\n---- sql\n{sql}\n"));
        if let Some(sweep) = codegen::sweep_candidates(&checked.pred, &cat.source, &cat.key, "$1") {
            out.push_str(&format!("---- sweep\n{sweep}\n"));
        }
        if checked.pred.row_local() {
            out.push_str("---- row-local\n");
        }
        for rel in &cat.relations {
            let relevance = codegen::relevance(&checked.pred, &rel.name, "\"r\"", &cat.key);
            if relevance != "false" {
                out.push_str(&format!("---- relevance of {} rows\n{relevance}\n", rel.name));
            }
            let lately = codegen::relevance_lately(&checked.pred, &rel.name, "\"r\"", &cat.key);
            if lately != relevance {
                out.push_str(&format!("---- relevance of {} rows since the last sweep\n{lately}\n", rel.name));
            }
            if let Some(member) = codegen::insert_decides(&checked.pred, &rel.name) {
                let what = if member { "enters" } else { "leaves" };
                out.push_str(&format!("---- a contact with a relevant {} row inserted {what}\n", rel.name));
            }
        }
        for w in checked.warnings {
            let d = w.locate(&case);
            out.push_str(&format!("---- warning {}:{} {}\n", d.line, d.col, d.message));
        }
        out.push_str("====\n");
    }
    compare(&path, out);
}

/// Invalid definitions: SQLSTATE, position, message and hint.
#[test]
fn invalid_definitions() {
    let path = root("errors.sdl");
    let cat = testing::catalog();
    let mut out = String::new();
    for case in cases(&path) {
        let problems = match parser::parse(&case) {
            Err(p) => vec![p],
            Ok(expr) => match typecheck::check(&expr, &cat) {
                Ok(_) => panic!("expected an error for:\n{case}"),
                Err(p) => p,
            },
        };
        out.push_str(&format!("{case}\n"));
        for p in problems {
            let d = p.locate(&case);
            out.push_str(&format!("---- {} {}:{} {}\n", d.sqlstate(), d.line, d.col, d.message));
            if let Some(h) = d.hint {
                out.push_str(&format!("     hint: {h}\n"));
            }
        }
        out.push_str("====\n");
    }
    compare(&path, out);
}
