//! The safe subset of Groovy that Riffle translates to built-in expressions when a server
//! enables it (`riffle serve --ingestion-groovy-safe-subset`): Pinot's docs and many configs in the
//! wild use Groovy for ternaries, string concatenation and arithmetic, none of which needs
//! a script engine. Anything else (method calls, statements, closures, `def`) is refused.
//!
//! The subset: literals (numbers, `'text'`, `"text"`, `true`, `false`, `null`), the
//! script's declared arguments, `( )`, `!`, unary `-`, `* / %`, `+ -` (`+` concatenates when
//! either side is text: a text literal or a STRING column), `== != < <= > >=`, `&&`, `||`
//! and `c ? a : b`.

/// Splits `Groovy({script}, a, b)` into the script and its argument names.
pub fn split(text: &str) -> Result<(String, Vec<String>), String> {
    let t = text.trim();
    let open = t
        .find('(')
        .ok_or("expected Groovy({script}, arguments...)")?;
    let inner = t[open + 1..]
        .trim_end()
        .strip_suffix(')')
        .ok_or("expected Groovy({script}, arguments...) ending with ')'")?
        .trim();
    let body = inner
        .strip_prefix('{')
        .ok_or("expected the script in braces: Groovy({script}, arguments...)")?;
    let mut depth = 1usize;
    let mut end = None;
    let mut quote: Option<char> = None;
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '{') => depth += 1,
            (None, '}') => {
                depth -= 1;
                if depth == 0 {
                    end = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let end = end.ok_or("the script's braces are not closed")?;
    let script = body[..end].trim().to_string();
    let args = body[end + 1..]
        .split(',')
        .map(|a| a.trim().trim_matches('"').to_string())
        .filter(|a| !a.is_empty())
        .collect();
    Ok((script, args))
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(String),
    Text(String),
    Ident(String),
    Op(&'static str),
}

const OPS: [&str; 20] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!", "?", ":", "(", ")",
    "=", ";",
];

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // Groovy's numeric suffixes (1L, 2.0d).
            if i < chars.len() && matches!(chars[i], 'L' | 'l' | 'd' | 'D' | 'f' | 'F') {
                i += 1;
                out.push(Tok::Num(chars[start..i - 1].iter().collect()));
            } else {
                out.push(Tok::Num(chars[start..i].iter().collect()));
            }
        } else if c == '\'' || c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' || (c == '"' && chars[i] == '$') {
                    return Err(
                        "escapes and interpolation in text are outside the safe subset".into(),
                    );
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated text literal".into());
            }
            out.push(Tok::Text(chars[start..i].iter().collect()));
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = OPS
                .iter()
                .find(|o| rest.starts_with(**o))
                .ok_or_else(|| format!("'{c}' is outside the safe subset"))?;
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Ok(out)
}

struct Translator<'a> {
    toks: Vec<Tok>,
    pos: usize,
    args: &'a [String],
    is_text_column: &'a dyn Fn(&str) -> bool,
}

/// SQL text and whether the value is text.
type Out = (String, bool);

impl Translator<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.peek() == Some(&Tok::Op(static_op(op))) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ternary(&mut self) -> Result<Out, String> {
        let c = self.or()?;
        if self.eat("?") {
            let a = self.ternary()?;
            if !self.eat(":") {
                return Err("expected ':' in 'c ? a : b'".into());
            }
            let b = self.ternary()?;
            return Ok((
                format!("(CASE WHEN {} THEN {} ELSE {} END)", c.0, a.0, b.0),
                a.1 || b.1,
            ));
        }
        Ok(c)
    }

    fn or(&mut self) -> Result<Out, String> {
        let mut l = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            l = (format!("({} OR {})", l.0, r.0), false);
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Out, String> {
        let mut l = self.cmp()?;
        while self.eat("&&") {
            let r = self.cmp()?;
            l = (format!("({} AND {})", l.0, r.0), false);
        }
        Ok(l)
    }

    fn cmp(&mut self) -> Result<Out, String> {
        let l = self.add()?;
        for (g, sql) in [
            ("==", "="),
            ("!=", "<>"),
            ("<=", "<="),
            (">=", ">="),
            ("<", "<"),
            (">", ">"),
        ] {
            if self.eat(g) {
                let r = self.add()?;
                // Groovy compares with null; SQL asks IS NULL.
                if r.0 == "NULL" && matches!(g, "==" | "!=") {
                    let not = if g == "!=" { " NOT" } else { "" };
                    return Ok((format!("({} IS{not} NULL)", l.0), false));
                }
                return Ok((format!("({} {sql} {})", l.0, r.0), false));
            }
        }
        if self.eat("=") {
            return Err("assignment is outside the safe subset".into());
        }
        Ok(l)
    }

    fn add(&mut self) -> Result<Out, String> {
        let mut l = self.mul()?;
        loop {
            if self.eat("+") {
                let r = self.mul()?;
                l = if l.1 || r.1 {
                    (format!("concat_ws('', {}, {})", l.0, r.0), true)
                } else {
                    (format!("({} + {})", l.0, r.0), false)
                };
            } else if self.eat("-") {
                let r = self.mul()?;
                l = (format!("({} - {})", l.0, r.0), false);
            } else {
                return Ok(l);
            }
        }
    }

    fn mul(&mut self) -> Result<Out, String> {
        let mut l = self.unary()?;
        loop {
            let op = if self.eat("*") {
                "*"
            } else if self.eat("/") {
                "/"
            } else if self.eat("%") {
                "%"
            } else {
                return Ok(l);
            };
            let r = self.unary()?;
            l = (format!("({} {op} {})", l.0, r.0), false);
        }
    }

    fn unary(&mut self) -> Result<Out, String> {
        if self.eat("!") {
            let v = self.unary()?;
            return Ok((format!("(NOT {})", v.0), false));
        }
        if self.eat("-") {
            let v = self.unary()?;
            return Ok((format!("(- {})", v.0), false));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Out, String> {
        let t = self.peek().cloned().ok_or("the script ends too early")?;
        self.pos += 1;
        match t {
            Tok::Num(n) => Ok((n, false)),
            Tok::Text(s) => Ok((format!("'{}'", s.replace('\'', "''")), true)),
            Tok::Ident(id) => match id.as_str() {
                "true" | "false" => Ok((id.to_uppercase(), false)),
                "null" => Ok(("NULL".into(), false)),
                _ if self.args.contains(&id) => {
                    if matches!(self.peek(), Some(Tok::Op("("))) {
                        return Err(format!("calling '{id}' is outside the safe subset"));
                    }
                    Ok((format!("\"{id}\""), (self.is_text_column)(&id)))
                }
                _ => Err(format!(
                    "'{id}' is neither a declared argument ({}) nor a literal; method calls, \
                     statements and variables are outside the safe subset",
                    self.args.join(", ")
                )),
            },
            Tok::Op("(") => {
                let v = self.ternary()?;
                if !self.eat(")") {
                    return Err("expected ')'".into());
                }
                Ok((format!("({})", v.0), v.1))
            }
            Tok::Op(o) => Err(format!("unexpected '{o}'")),
        }
    }
}

fn static_op(op: &str) -> &'static str {
    OPS.iter().find(|o| **o == op).copied().unwrap_or("")
}

/// Translates a Groovy transform or filter to SQL over its arguments; `is_text_column`
/// says which columns hold text (their `+` concatenates).
pub fn translate(text: &str, is_text_column: &dyn Fn(&str) -> bool) -> Result<String, String> {
    let (script, args) = split(text)?;
    let toks = lex(&script)?;
    let mut t = Translator {
        toks,
        pos: 0,
        args: &args,
        is_text_column,
    };
    let out = t.ternary()?;
    if let Some(rest) = t.peek() {
        return Err(format!(
            "unexpected {rest:?} after the expression; statements are outside the safe subset"
        ));
    }
    Ok(out.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(s: &str) -> Result<String, String> {
        translate(s, &|c| c == "first" || c == "last")
    }

    #[test]
    fn translates_the_safe_subset() {
        assert_eq!(
            tr("Groovy({first + ' ' + last}, first, last)").unwrap(),
            "concat_ws('', concat_ws('', \"first\", ' '), \"last\")"
        );
        assert_eq!(
            tr("Groovy({a * 2 + b}, a, b)").unwrap(),
            "((\"a\" * 2) + \"b\")"
        );
        assert_eq!(
            tr("Groovy({a > 10 ? \"big\" : \"small\"}, a)").unwrap(),
            "(CASE WHEN (\"a\" > 10) THEN 'big' ELSE 'small' END)"
        );
        assert_eq!(
            tr("Groovy({timestamp < 1589007600000L}, timestamp)").unwrap(),
            "(\"timestamp\" < 1589007600000)"
        );
        assert_eq!(
            tr("Groovy({a == null && !(b != 1)}, a, b)").unwrap(),
            "((\"a\" IS NULL) AND (NOT ((\"b\" <> 1))))"
        );
    }

    #[test]
    fn refuses_everything_else() {
        for s in [
            "Groovy({prices.max()}, prices)",
            "Groovy({def x = 1; x}, a)",
            "Groovy({Runtime.getRuntime().exec('rm')}, a)",
            "Groovy({\"${a}\"}, a)",
            "Groovy({c}, a)",
            "Groovy({a(1)}, a)",
        ] {
            let e = tr(s).unwrap_err();
            assert!(!e.is_empty(), "{s}");
        }
    }
}
