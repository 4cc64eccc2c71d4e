//! `EMIT ON WINDOW CLOSE` after a continuous query (RisingWave's clause), including after a
//! query that ends in a bare table name, where sqlparser has read `EMIT` as an alias.

use datafusion::sql::sqlparser::ast::{Query, SetExpr, TableFactor};
use datafusion::sql::sqlparser::parser::Parser;

use super::{word_at, words};

/// `EMIT ON WINDOW CLOSE` after a continuous query (RisingWave's clause).
fn emit_on_window_close(parser: &mut Parser) -> bool {
    words(parser, &["EMIT", "ON", "WINDOW", "CLOSE"])
}

/// `EMIT ON WINDOW CLOSE` after `query`, also where the query ends in a bare table name
/// (`.. FROM windowed EMIT ON WINDOW CLOSE`): sqlparser then reads `EMIT` as the table's
/// alias and stops before `ON`, so that alias is taken back.
pub(super) fn emit_after(parser: &mut Parser, query: &mut Query) -> bool {
    if emit_on_window_close(parser) {
        return true;
    }
    if !(word_at(parser, 0, "ON") && word_at(parser, 1, "WINDOW") && word_at(parser, 2, "CLOSE")) {
        return false;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return false;
    };
    let Some(from) = select.from.last_mut() else {
        return false;
    };
    let last = match from.joins.last_mut() {
        Some(join) => &mut join.relation,
        None => &mut from.relation,
    };
    let alias = match last {
        TableFactor::Table { alias, .. } | TableFactor::Derived { alias, .. } => alias,
        _ => return false,
    };
    let is_emit = alias.as_ref().is_some_and(|a| {
        !a.explicit
            && a.columns.is_empty()
            && a.name.quote_style.is_none()
            && a.name.value.eq_ignore_ascii_case("EMIT")
    });
    if !is_emit {
        return false;
    }
    *alias = None;
    for _ in 0..3 {
        parser.next_token();
    }
    true
}
