//! `TEXT_MATCH(text, 'query')`: Pinot's text search, evaluated on each row's text (Pinot
//! answers it from a Lucene text index; Riffle has none and reads the values).
//!
//! The query is Lucene's classic syntax, the common part: terms (`error`), phrases
//! (`"connection reset"`: consecutive terms), prefixes (`conn*`), wildcards (`c?nnect*`),
//! regular expressions (`/conn.*/`), `AND`, `OR`, `NOT` (and `&&`, `||`, `!`, `+term`,
//! `-term`), parentheses; terms side by side mean `OR`, as Lucene's default operator. Text
//! is split into terms as Lucene's standard analyzer does for the common cases: runs of
//! letters and digits, lowercased. Field names (`field:term`), fuzziness (`~`), boosts
//! (`^`) and ranges are refused with the query named.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use regex::Regex;

/// The terms of `text`: runs of letters and digits, lowercased.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A parsed query.
#[derive(Debug)]
pub enum Query {
    /// Any term matches the pattern (a whole-term regex).
    Term(Regex),
    /// These terms consecutively.
    Phrase(Vec<String>),
    And(Box<Query>, Box<Query>),
    Or(Box<Query>, Box<Query>),
    Not(Box<Query>),
    /// Matches no text (a query of prohibited clauses only, as Lucene's).
    Nothing,
}

impl Query {
    /// Whether a text with these terms matches.
    pub fn matches(&self, t: &[String]) -> bool {
        match self {
            Query::Term(re) => t.iter().any(|x| re.is_match(x)),
            Query::Phrase(p) => !p.is_empty() && t.windows(p.len()).any(|w| w == p.as_slice()),
            Query::And(a, b) => a.matches(t) && b.matches(t),
            Query::Or(a, b) => a.matches(t) || b.matches(t),
            Query::Not(a) => !a.matches(t),
            Query::Nothing => false,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Phrase(String),
    Regex(String),
    And,
    Or,
    Not,
    /// `+`: the next clause is required.
    Plus,
    /// `-`: the next clause is prohibited.
    Minus,
    Open,
    Close,
}

fn tokens(q: &str) -> std::result::Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            '"' | '/' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some(x) if x == c => break,
                        Some('\\') => s.extend(chars.next()),
                        Some(x) => s.push(x),
                        None => return Err(format!("an unclosed {c}")),
                    }
                }
                out.push(if c == '"' {
                    Tok::Phrase(s)
                } else {
                    Tok::Regex(s)
                });
            }
            '&' | '|' => {
                chars.next();
                if chars.next() != Some(c) {
                    return Err(format!("a single '{c}' (write {c}{c})"));
                }
                out.push(if c == '&' { Tok::And } else { Tok::Or });
            }
            '!' => {
                chars.next();
                out.push(Tok::Not);
            }
            '-' => {
                chars.next();
                out.push(Tok::Minus);
            }
            '+' => {
                chars.next();
                out.push(Tok::Plus);
            }
            ':' | '~' | '^' | '[' | ']' | '{' | '}' => {
                return Err(format!(
                    "'{c}' (fields, fuzziness, boosts and ranges) is not supported"
                ))
            }
            _ => {
                let mut w = String::new();
                while let Some(&x) = chars.peek() {
                    if x.is_whitespace() || "()\"/:~^[]{}".contains(x) {
                        break;
                    }
                    w.push(x);
                    chars.next();
                }
                out.push(match w.as_str() {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    "NOT" => Tok::Not,
                    _ => Tok::Word(w),
                });
            }
        }
    }
    Ok(out)
}

/// A term with `*` and `?` as a whole-term regex.
fn wildcard(w: &str) -> std::result::Result<Regex, String> {
    let mut re = String::from("^");
    for c in w.to_lowercase().chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| format!("the term '{w}': {e}"))
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    /// A sequence of clauses (side by side or joined by OR), each optionally `+` (required)
    /// or `-` (prohibited), combined as Lucene does: every required clause, else one of the
    /// optional ones, and none of the prohibited.
    fn or(&mut self) -> std::result::Result<Query, String> {
        let (mut required, mut optional, mut prohibited) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            match self.peek() {
                Some(Tok::Close) | None => break,
                Some(Tok::Or) => {
                    self.at += 1;
                    if matches!(self.peek(), Some(Tok::Close) | None) {
                        return Err("nothing after OR".into());
                    }
                    continue;
                }
                _ => {}
            }
            let kind = match self.peek() {
                Some(Tok::Plus) => 1,
                Some(Tok::Minus) => 2,
                _ => 0,
            };
            if kind != 0 {
                self.at += 1;
            }
            let q = self.and()?;
            match kind {
                1 => required.push(q),
                2 => prohibited.push(q),
                _ => optional.push(q),
            }
        }
        let all = |v: Vec<Query>, and: bool| {
            v.into_iter().reduce(|a, b| {
                if and {
                    Query::And(Box::new(a), Box::new(b))
                } else {
                    Query::Or(Box::new(a), Box::new(b))
                }
            })
        };
        if required.is_empty() && optional.is_empty() && prohibited.is_empty() {
            return Err("an empty query or group".into());
        }
        let mut q = all(required, true)
            .or_else(|| all(optional, false))
            .unwrap_or(Query::Nothing);
        for p in prohibited {
            q = Query::And(Box::new(q), Box::new(Query::Not(Box::new(p))));
        }
        Ok(q)
    }

    fn and(&mut self) -> std::result::Result<Query, String> {
        let mut q = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.at += 1;
            q = Query::And(Box::new(q), Box::new(self.unary()?));
        }
        Ok(q)
    }

    fn unary(&mut self) -> std::result::Result<Query, String> {
        self.depth += 1;
        if self.depth > 64 {
            return Err("nested too deeply".into());
        }
        let tok = self.toks.get(self.at).map(|t| match t {
            Tok::Word(w) => Tok::Word(w.clone()),
            Tok::Phrase(p) => Tok::Phrase(p.clone()),
            Tok::Regex(r) => Tok::Regex(r.clone()),
            Tok::And => Tok::And,
            Tok::Or => Tok::Or,
            Tok::Not => Tok::Not,
            Tok::Plus => Tok::Plus,
            Tok::Minus => Tok::Minus,
            Tok::Open => Tok::Open,
            Tok::Close => Tok::Close,
        });
        self.at += 1;
        let q = match tok {
            Some(Tok::Not) => Query::Not(Box::new(self.unary()?)),
            Some(Tok::Open) => {
                let q = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("an unclosed '('".into());
                }
                self.at += 1;
                q
            }
            Some(Tok::Word(w)) => Query::Term(wildcard(&w)?),
            Some(Tok::Phrase(p)) => Query::Phrase(terms(&p)),
            Some(Tok::Regex(r)) => Query::Term(
                Regex::new(&format!("^(?:{r})$")).map_err(|e| format!("the pattern /{r}/: {e}"))?,
            ),
            Some(t) => return Err(format!("unexpected {t:?}")),
            None => return Err("the query ends too early".into()),
        };
        self.depth -= 1;
        Ok(q)
    }
}

/// Parses a query; the error says what is wrong.
pub fn parse(q: &str) -> std::result::Result<Query, String> {
    let toks = tokens(q)?;
    if toks.is_empty() {
        return Err("the query is empty".into());
    }
    let mut p = Parser {
        toks,
        at: 0,
        depth: 0,
    };
    let query = p.or()?;
    if p.at < p.toks.len() {
        return Err("an unmatched ')'".into());
    }
    Ok(query)
}

/// `TEXT_MATCH`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TextMatch {
    signature: Signature,
}

impl TextMatch {
    /// The function.
    pub fn new() -> TextMatch {
        TextMatch {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl Default for TextMatch {
    fn default() -> Self {
        TextMatch::new()
    }
}

impl ScalarUDFImpl for TextMatch {
    fn name(&self) -> &str {
        "text_match"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        // Pinot's third argument holds index options, which mean nothing without an index.
        if !(2..=3).contains(&arg_types.len()) {
            return exec_err!(
                "text_match takes a column and a query, got {} arguments",
                arg_types.len()
            );
        }
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let query = match args.args.get(1) {
            Some(ColumnarValue::Scalar(s)) => crate::literal::text(s).map(str::to_string),
            _ => None,
        };
        let Some(query) = query else {
            return exec_err!("text_match: the query (second argument) must be a text literal");
        };
        let q = match parse(&query) {
            Ok(q) => q,
            Err(e) => return exec_err!("text_match: query '{query}': {e}"),
        };
        let Some(first) = args.args.first() else {
            return exec_err!("text_match takes a column");
        };
        let a: ArrayRef = cast(&first.to_array(rows)?, &DataType::Utf8)?;
        let a = a.as_string::<i32>();
        let mut b = BooleanBuilder::with_capacity(rows);
        for i in 0..rows {
            b.append_value(!a.is_null(i) && q.matches(&terms(a.value(i))));
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(q: &str, text: &str) -> bool {
        parse(q).unwrap().matches(&terms(text))
    }

    #[test]
    fn lucene_queries_on_terms() {
        let log = "ERROR: Connection reset by peer (host db-7)";
        assert!(m("error", log));
        assert!(m("\"connection reset\"", log));
        assert!(!m("\"reset connection\"", log));
        assert!(m("conn*", log));
        assert!(m("d? AND peer", log));
        assert!(m("/db|dc/ AND 7", log));
        assert!(m("timeout OR reset", log));
        assert!(m("timeout reset", log));
        assert!(!m("error AND NOT peer", log));
        assert!(m("error && !(timeout || refused)", log));
        assert!(m("+error -timeout", log));
        assert!(!m("+timeout error", log));
        assert!(!m("-error", log));
        assert!(!m("-timeout", log));
        assert!(m("error -timeout", log));
        assert!(!m("error -peer", log));
        for bad in [
            "", "(error", "error)", "host:db", "error~2", "\"open", "a || ",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod sql_tests {
    use crate::sql_test::{error, first_row};

    #[tokio::test]
    async fn text_match_filters_rows_through_sql() {
        let got = first_row(
            "SELECT COUNT(*) FROM (VALUES ('disk full on db-1'), ('Connection reset'), \
             ('connection refused'), (NULL)) AS t(msg) \
             WHERE text_match(msg, 'connection AND NOT refused OR disk')",
        )
        .await;
        assert_eq!(got, ["2"]);
        let e = error("SELECT text_match('a', 'host:db')").await;
        assert!(e.contains("text_match: query 'host:db'"), "{e}");
    }
}
