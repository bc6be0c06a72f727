//! A JSON document as Jackson's tree reads it for Confluent's JSON Schema deserializer: numbers
//! keep their text (Jackson reads integers as `BigInteger` when they outgrow a `long` and
//! fractions as exact `BigDecimal`s, `USE_BIG_DECIMAL_FOR_FLOATS`), so a value converted to a
//! `long`, `int` or `double` afterwards ([`crate::formats::json_schema`]) comes out as Java's would, not
//! as an `f64` read first would make it. `NaN`, `Infinity`, `+Infinity` and `-Infinity` are
//! numbers (`ALLOW_NON_NUMERIC_NUMBERS`, which Confluent's `Jackson.newObjectMapper` enables).
//!
//! serde_json cannot keep number text without its `arbitrary_precision` feature, which would
//! change every number of the workspace; so this is a small recursive-descent reader, its depth
//! bounded by [`MAX_DEPTH`] (a hostile payload of nested brackets is an error, not a stack
//! overflow). Object keys keep their order; a key given twice keeps its last value (Jackson's
//! `ObjectNode.set`).

/// The deepest nesting of arrays and objects read.
pub(crate) const MAX_DEPTH: usize = 256;

/// Members of an object compared one by one before they are indexed by key.
const INDEXED_AFTER: usize = 16;

#[cfg(test)]
thread_local! {
    /// Keys compared one by one on this thread (tests: the work stays linear).
    static COMPARED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum J<'a> {
    Null,
    Bool(bool),
    /// A number's text as written (`-12`, `1.50`, `3e10`), or `NaN`, `Infinity`, `+Infinity`,
    /// `-Infinity`.
    Num(&'a str),
    Str(String),
    Arr(Vec<J<'a>>),
    Obj(Vec<(String, J<'a>)>),
}

impl<'a> J<'a> {
    /// Parses `text`: exactly one JSON value, with white space around it.
    ///
    /// # Errors
    /// Text that is not one JSON value, or nested deeper than [`MAX_DEPTH`]; the reason names
    /// the byte offset.
    pub(crate) fn parse(text: &'a str) -> Result<Self, String> {
        let mut p = Reader { s: text, i: 0 };
        let v = p.value(0)?;
        p.ws();
        if p.i != text.len() {
            return Err(format!("text after the JSON value at byte {}", p.i));
        }
        Ok(v)
    }

    /// The member `key` of an object (its last, as Jackson keeps it), if any.
    pub(crate) fn get(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::Obj(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Jackson's node type name, for reasons.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            J::Null => "NULL",
            J::Bool(_) => "BOOLEAN",
            J::Num(_) => "NUMBER",
            J::Str(_) => "STRING",
            J::Arr(_) => "ARRAY",
            J::Obj(_) => "OBJECT",
        }
    }
}

struct Reader<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Reader<'a> {
    fn ws(&mut self) {
        let b = self.s.as_bytes();
        while self.i < b.len() && matches!(b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        if self.i >= self.s.len() {
            format!("the text ends inside the value (byte {})", self.i)
        } else {
            format!("{what} at byte {}", self.i)
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<J<'a>, String> {
        self.ws();
        let Some(&c) = self.s.as_bytes().get(self.i) else {
            return Err(self.err("no JSON value"));
        };
        match c {
            b'{' | b'[' if depth >= MAX_DEPTH => Err(self.err(&format!(
                "arrays and objects nested deeper than {MAX_DEPTH} levels"
            ))),
            b'{' => {
                self.i += 1;
                let mut members: Vec<(String, J<'a>)> = Vec::new();
                // Past a few members, where each key is: a repeated key replaces its value
                // (Jackson keeps the last), found without comparing it with every key before
                // (100,000 keys took ~10 s of comparisons).
                let mut index: Option<std::collections::HashMap<String, usize>> = None;
                self.ws();
                if self.eat("}") {
                    return Ok(J::Obj(members));
                }
                loop {
                    self.ws();
                    if self.s.as_bytes().get(self.i) != Some(&b'"') {
                        return Err(self.err("an object key that is not a string"));
                    }
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return Err(self.err("no ':' after an object key"));
                    }
                    let v = self.value(depth + 1)?;
                    let found = match &index {
                        Some(index) => index.get(&key).copied(),
                        None => {
                            #[cfg(test)]
                            COMPARED.with(|c| c.set(c.get() + members.len()));
                            members.iter().position(|(k, _)| *k == key)
                        }
                    };
                    match found {
                        Some(i) => members[i].1 = v,
                        None => {
                            if let Some(index) = &mut index {
                                index.insert(key.clone(), members.len());
                            }
                            members.push((key, v));
                            if index.is_none() && members.len() > INDEXED_AFTER {
                                index = Some(
                                    members
                                        .iter()
                                        .enumerate()
                                        .map(|(i, (k, _))| (k.clone(), i))
                                        .collect(),
                                );
                            }
                        }
                    }
                    self.ws();
                    if self.eat("}") {
                        return Ok(J::Obj(members));
                    }
                    if !self.eat(",") {
                        return Err(self.err("no ',' or '}' in an object"));
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Ok(J::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat("]") {
                        return Ok(J::Arr(items));
                    }
                    if !self.eat(",") {
                        return Err(self.err("no ',' or ']' in an array"));
                    }
                }
            }
            b'"' => Ok(J::Str(self.string()?)),
            b't' if self.eat("true") => Ok(J::Bool(true)),
            b'f' if self.eat("false") => Ok(J::Bool(false)),
            b'n' if self.eat("null") => Ok(J::Null),
            _ => {
                for special in ["NaN", "Infinity", "+Infinity", "-Infinity"] {
                    if self.eat(special) {
                        return Ok(J::Num(special));
                    }
                }
                self.number()
            }
        }
    }

    /// A string token, unescaped (by serde_json, which knows JSON's escapes).
    fn string(&mut self) -> Result<String, String> {
        let b = self.s.as_bytes();
        let start = self.i;
        let mut j = start + 1;
        while j < b.len() {
            match b[j] {
                b'"' => {
                    let token = &self.s[start..=j];
                    self.i = j + 1;
                    return serde_json::from_str(token)
                        .map_err(|e| format!("a bad string at byte {start} ({e})"));
                }
                b'\\' => j += 2,
                _ => j += 1,
            }
        }
        Err(format!("a string at byte {start} that does not end"))
    }

    /// A number token: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<J<'a>, String> {
        let b = self.s.as_bytes();
        let start = self.i;
        let mut j = start;
        let digits = |j: &mut usize| {
            let from = *j;
            while *j < b.len() && b[*j].is_ascii_digit() {
                *j += 1;
            }
            *j > from
        };
        if b.get(j) == Some(&b'-') {
            j += 1;
        }
        let int_start = j;
        if !digits(&mut j) || (b[int_start] == b'0' && j - int_start > 1) {
            return Err(self.err("not a JSON value"));
        }
        if b.get(j) == Some(&b'.') {
            j += 1;
            if !digits(&mut j) {
                return Err(self.err("a number without digits after '.'"));
            }
        }
        if matches!(b.get(j), Some(b'e' | b'E')) {
            j += 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if !digits(&mut j) {
                return Err(self.err("a number without digits in its exponent"));
            }
        }
        self.i = j;
        Ok(J::Num(&self.s[start..j]))
    }
}

/// A JSON number's text taken apart: sign, all its digits (integer then fraction part) and the
/// power of ten they are scaled by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal<'a> {
    pub negative: bool,
    /// The integer part's digits followed by the fraction's (`1.50` → `150`).
    pub digits: String,
    /// The value is `digits × 10^exponent` (`1.50` → -2; `2e3` → 3). Saturates far beyond any
    /// number Java could read.
    pub exponent: i64,
    /// The text.
    pub text: &'a str,
}

impl<'a> Decimal<'a> {
    /// `text` (a [`J::Num`] that is finite) taken apart; `None` for `NaN` and the infinities.
    pub(crate) fn of(text: &'a str) -> Option<Self> {
        let negative = text.starts_with('-');
        let body = text.trim_start_matches(['-', '+']);
        if !body.as_bytes().first()?.is_ascii_digit() {
            return None;
        }
        let (mantissa, exp) = match body.find(['e', 'E']) {
            Some(at) => (&body[..at], &body[at + 1..]),
            None => (body, "0"),
        };
        let exp: i64 = exp.parse().unwrap_or(if exp.starts_with('-') {
            i64::MIN / 2
        } else {
            i64::MAX / 2
        });
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        Some(Self {
            negative,
            digits: format!("{int}{frac}"),
            exponent: exp.saturating_sub(frac.len() as i64),
            text,
        })
    }

    /// Whether Jackson reads the text as an integer node (no fraction, no exponent).
    pub(crate) fn is_integral(&self) -> bool {
        !self.text.contains(['.', 'e', 'E'])
    }

    /// The low 64 bits of the value truncated toward zero, as Java's `BigDecimal.longValue()`
    /// and `BigInteger.longValue()` give them (an integer past a `long` wraps).
    pub(crate) fn low_bits(&self) -> i64 {
        let mut acc: u64 = 0;
        let keep = if self.exponent >= 0 {
            self.digits.len()
        } else {
            let drop = usize::try_from(self.exponent.unsigned_abs()).unwrap_or(usize::MAX);
            self.digits.len().saturating_sub(drop)
        };
        for d in self.digits.bytes().take(keep) {
            acc = acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
        }
        // × 10^e: 10^e = 2^e × 5^e, so from e = 64 on nothing is left of the low 64 bits.
        if self.exponent > 0 {
            if self.exponent >= 64 {
                acc = 0;
            } else {
                for _ in 0..self.exponent {
                    acc = acc.wrapping_mul(10);
                }
            }
        }
        let v = acc as i64;
        if self.negative {
            v.wrapping_neg()
        } else {
            v
        }
    }

    /// Whether the value is an integer that fits an `int` (Jackson's `isInt()`: an integer
    /// node of that size).
    pub(crate) fn is_int(&self) -> bool {
        self.is_integral() && self.text.parse::<i32>().is_ok()
    }

    /// The value's unscaled digits (no leading zeros, signed) and scale, as a `BigDecimal`.
    pub(crate) fn unscaled_and_scale(&self) -> (String, i64) {
        let trimmed = self.digits.trim_start_matches('0');
        let digits = if trimmed.is_empty() { "0" } else { trimmed };
        let sign = if self.negative && digits != "0" {
            "-"
        } else {
            ""
        };
        (format!("{sign}{digits}"), -self.exponent)
    }
}

#[cfg(test)]
mod tests {

    /// Issue 56: an object of 200,000 distinct keys parses in linear work (each new key was
    /// compared with every key before it: 2·10^10 comparisons), and a repeated key still
    /// keeps its last value in its first place. The work is counted, not timed: the keys
    /// compared one by one are the same few at 2,000 and at 200,000 keys (the rest are found
    /// through the index).
    #[test]
    fn many_keys_parse_in_linear_time_and_the_last_repeat_wins() {
        let compared = |keys: usize| {
            let members: Vec<String> = (0..keys).map(|i| format!("\"k{i}\":{i}")).collect();
            let text = format!("{{{},\"k5\":\"again\",\"k1500\":true}}", members.join(","));
            COMPARED.with(|c| c.set(0));
            let v = J::parse(&text).unwrap();
            let J::Obj(m) = &v else { panic!() };
            assert_eq!(m.len(), keys);
            assert_eq!(m[5], ("k5".to_owned(), J::Str("again".into())));
            assert_eq!(m[1500].1, J::Bool(true));
            COMPARED.with(std::cell::Cell::get)
        };
        let (small, large) = (compared(2_000), compared(200_000));
        let most = INDEXED_AFTER * (INDEXED_AFTER + 1) / 2;
        assert!(small <= most, "{small} comparisons of keys, at most {most}");
        assert_eq!(small, large, "comparisons grow with the keys");
        let small = J::parse(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(small.get("a"), Some(&J::Num("3")));
    }
    use super::*;

    #[test]
    fn numbers_keep_their_text_and_keys_their_last_value() {
        let v = J::parse(
            r#" {"a": 12345678901234567890123, "b": 1.50, "a": -0, "c": [NaN, -Infinity]} "#,
        )
        .unwrap();
        assert_eq!(v.get("a"), Some(&J::Num("-0")));
        assert_eq!(v.get("b"), Some(&J::Num("1.50")));
        assert_eq!(
            v.get("c"),
            Some(&J::Arr(vec![J::Num("NaN"), J::Num("-Infinity")]))
        );
        let J::Obj(members) = &v else { panic!() };
        assert_eq!(members.len(), 3, "a given twice is one key");
    }

    #[test]
    fn what_is_not_one_json_value_is_refused() {
        for (text, why) in [
            ("", "ends inside"),
            (" ", "ends inside"),
            ("{\"a\":1,", "ends inside"),
            ("{\"a\":1} x", "text after"),
            ("01", "not a JSON value"),
            ("1.", "after '.'"),
            ("{\"a\" 1}", "no ':'"),
            ("[1 2]", "no ','"),
            ("\"abc", "does not end"),
            ("\"\\x\"", "a bad string"),
        ] {
            let err = J::parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(J::parse(&deep).unwrap_err().contains("nested deeper"));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(J::parse(&ok).is_ok());
    }

    #[test]
    fn long_value_wraps_and_truncates_as_java() {
        let cases = [
            ("12345678901234567890", -6_101_065_172_474_983_726_i64),
            ("-1", -1),
            ("1.9", 1),
            ("-1.9", -1),
            ("1e3", 1000),
            ("1.5e1", 15),
            ("2.5e-1", 0),
            ("1e64", 0),
            ("3e63", i64::MIN),
            ("9223372036854775808", i64::MIN),
            ("18446744073709551617", 1),
        ];
        for (text, want) in cases {
            assert_eq!(Decimal::of(text).unwrap().low_bits(), want, "{text}");
        }
        // 3 × 10^63 mod 2^64 is not 0 when the factor 2^63 is not enough: check one against
        // num-bigint.
        let big =
            num_bigint::BigInt::parse_bytes(b"7000000000000000000000000000000000", 10).unwrap();
        let low = (big & num_bigint::BigInt::from(u64::MAX))
            .to_string()
            .parse::<u64>()
            .unwrap() as i64;
        assert_eq!(Decimal::of("7e33").unwrap().low_bits(), low);
        assert!(Decimal::of("NaN").is_none());
        assert!(Decimal::of("2147483647").unwrap().is_int());
        assert!(!Decimal::of("2147483648").unwrap().is_int());
        assert!(!Decimal::of("1.0").unwrap().is_int());
        assert_eq!(
            Decimal::of("-001.2300e1").unwrap().unscaled_and_scale(),
            ("-12300".into(), 3)
        );
    }
}
