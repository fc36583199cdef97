//! A small parser for the Python literals found in OpinionQA's CSV columns (lists and dicts
//! of strings and numbers, as `repr` writes them). Not a general Python parser.

/// A parsed literal.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// A string.
    Str(String),
    /// A number.
    Num(f64),
    /// A list.
    List(Vec<PyValue>),
    /// A dict, as its key-value pairs in order.
    Dict(Vec<(PyValue, PyValue)>),
}

/// Parses one literal; the error says where it went wrong.
pub fn parse(text: &str) -> Result<PyValue, String> {
    let mut p = Parser { chars: text.chars().collect(), pos: 0 };
    let v = p.value()?;
    p.ws();
    if p.pos != p.chars.len() {
        return Err(format!("unexpected text at character {}", p.pos + 1));
    }
    Ok(v)
}

impl PyValue {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PyValue::Num(n) => Some(*n),
            _ => None,
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected `{c}` at character {}", self.pos + 1))
        }
    }

    fn value(&mut self) -> Result<PyValue, String> {
        self.ws();
        match self.peek() {
            Some('[') => self.seq('[', ']').map(PyValue::List),
            Some('(') => self.seq('(', ')').map(PyValue::List),
            Some('{') => self.dict(),
            Some('\'') | Some('"') => self.string().map(PyValue::Str),
            Some(c) if c == '-' || c == '+' || c == '.' || c.is_ascii_digit() => self.number(),
            Some(_) => self.word(),
            None => Err("unexpected end of literal".into()),
        }
    }

    fn seq(&mut self, open: char, close: char) -> Result<Vec<PyValue>, String> {
        self.expect(open)?;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => return Err(format!("expected `,` or `{close}` at character {}", self.pos + 1)),
            }
        }
    }

    fn dict(&mut self) -> Result<PyValue, String> {
        self.expect('{')?;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(PyValue::Dict(items));
            }
            let k = self.value()?;
            self.expect(':')?;
            let v = self.value()?;
            items.push((k, v));
            self.ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {}
                _ => return Err(format!("expected `,` or `}}` at character {}", self.pos + 1)),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or("unexpected end")?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = self.peek().ok_or_else(|| "unterminated string".to_string())?;
            self.pos += 1;
            match c {
                '\\' => {
                    let e = self.peek().ok_or_else(|| "unterminated escape".to_string())?;
                    self.pos += 1;
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                }
                c if c == quote => return Ok(out),
                c => out.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<PyValue, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
            self.pos += 1;
        }
        let s: String = self.chars[start..self.pos].iter().collect();
        s.parse::<f64>().map(PyValue::Num).map_err(|_| format!("bad number `{s}` at character {}", start + 1))
    }

    fn word(&mut self) -> Result<PyValue, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        let w: String = self.chars[start..self.pos].iter().collect();
        match w.as_str() {
            "nan" | "NaN" => Ok(PyValue::Num(f64::NAN)),
            "" => Err(format!("unexpected character at {}", start + 1)),
            other => Err(format!("unsupported literal `{other}` at character {}", start + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_opinionqa_columns() {
        let v = parse(r#"['Yes, I own a gun', "No, I don't own any guns", 'Refused']"#).unwrap();
        assert_eq!(
            v,
            PyValue::List(vec![
                PyValue::Str("Yes, I own a gun".into()),
                PyValue::Str("No, I don't own any guns".into()),
                PyValue::Str("Refused".into())
            ])
        );
        let d = parse("{1.0: 'Very safe', 99.0: 'Refused'}").unwrap();
        let PyValue::Dict(items) = d else { panic!() };
        assert_eq!(items[1], (PyValue::Num(99.0), PyValue::Str("Refused".into())));
        assert_eq!(
            parse("[1, 1, 1.5]").unwrap(),
            PyValue::List(vec![PyValue::Num(1.0), PyValue::Num(1.0), PyValue::Num(1.5)])
        );
        assert!(parse("['unterminated").is_err());
        assert!(parse("[1, 2").is_err());
    }
}
