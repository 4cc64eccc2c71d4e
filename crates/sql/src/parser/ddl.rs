//! The shapes of `CREATE VIEW` (a named query, not materialized), `ALTER .. RENAME TO` and
//! `TRUNCATE`: names and lists are parsed here, the view's query by sqlparser.

use std::fmt;

use datafusion::sql::sqlparser::ast::Query;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use super::{normalize, object_name, quote_ident, word, word_at, words, ObjectKind, WeirStatement};

/// `CREATE [OR REPLACE] VIEW [IF NOT EXISTS] name [(col, ...)] AS query`: stored, and
/// inlined as a subquery wherever a statement reads `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePlainView {
    pub name: String,
    pub if_not_exists: bool,
    /// `OR REPLACE`: a view of this name is replaced (its columns kept, new ones added at
    /// the end). Not stored: the catalog keeps the plain `CREATE VIEW`.
    pub or_replace: bool,
    /// The column names given after the view's name (empty: the query's own names).
    pub columns: Vec<String>,
    pub query: Box<Query>,
}

/// `ALTER {SOURCE | TABLE | MATERIALIZED VIEW | VIEW | SINK} name RENAME TO new`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rename {
    pub kind: ObjectKind,
    pub name: String,
    pub new_name: String,
}

pub(super) fn parse_create_view(
    parser: &mut Parser,
    or_replace: bool,
) -> Result<CreatePlainView, ParserError> {
    let if_not_exists = words(parser, &["IF", "NOT", "EXISTS"]);
    if or_replace && if_not_exists {
        return Err(ParserError::ParserError(
            "CREATE OR REPLACE VIEW takes no IF NOT EXISTS".to_string(),
        ));
    }
    let name = object_name(parser)?;
    let mut columns = Vec::new();
    if parser.consume_token(&Token::LParen) {
        loop {
            let column = normalize(&parser.parse_identifier()?);
            if columns.contains(&column) {
                return Err(ParserError::ParserError(format!(
                    "column {column} specified more than once"
                )));
            }
            columns.push(column);
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        parser.expect_token(&Token::RParen)?;
    }
    if !word(parser, "AS") {
        return parser.expected("AS", parser.peek_token());
    }
    let query = parser.parse_query()?;
    Ok(CreatePlainView {
        name,
        if_not_exists,
        or_replace,
        columns,
        query,
    })
}

/// `ALTER .. RENAME TO ..` and `TRUNCATE [TABLE] name`; `None` for any other statement
/// (other ALTERs go on to sqlparser, and DataFusion refuses them).
pub(super) fn parse_alter_or_truncate(
    parser: &mut Parser,
) -> Result<Option<WeirStatement>, ParserError> {
    if word_at(parser, 0, "TRUNCATE") {
        parser.next_token();
        word(parser, "TABLE");
        let name = object_name(parser)?;
        return Ok(Some(WeirStatement::Truncate(name)));
    }
    if !word_at(parser, 0, "ALTER") {
        return Ok(None);
    }
    let kind = if word_at(parser, 1, "SOURCE") {
        (ObjectKind::Source, 2)
    } else if word_at(parser, 1, "TABLE") {
        (ObjectKind::Table, 2)
    } else if word_at(parser, 1, "MATERIALIZED") && word_at(parser, 2, "VIEW") {
        (ObjectKind::MaterializedView, 3)
    } else if word_at(parser, 1, "VIEW") {
        (ObjectKind::View, 2)
    } else if word_at(parser, 1, "SINK") {
        (ObjectKind::Sink, 2)
    } else {
        return Ok(None);
    };
    for _ in 0..kind.1 {
        parser.next_token();
    }
    let name = object_name(parser)?;
    if !words(parser, &["RENAME", "TO"]) {
        return Err(ParserError::ParserError(format!(
            "ALTER {} supports RENAME TO new_name, found {}",
            kind.0.sql_name(),
            parser.peek_token().token
        )));
    }
    let new_name = object_name(parser)?;
    Ok(Some(WeirStatement::Rename(Rename {
        kind: kind.0,
        name,
        new_name,
    })))
}

/// The view as the catalog stores it.
impl fmt::Display for CreatePlainView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CREATE VIEW {}", quote_ident(&self.name))?;
        if !self.columns.is_empty() {
            let columns: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
            write!(f, " ({})", columns.join(", "))?;
        }
        write!(f, " AS {}", self.query)
    }
}
