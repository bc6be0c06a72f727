//! Stage 2 of the two-stage check: JSON's grammar over stage 1's token positions. Where the
//! next token is no longer depends on where this one ends (stage 1 found them all), so a
//! number's or literal's bytes are read beside the walk, not before the next step of it.
//! Strings need nothing here: stage 1 checked their bytes and escapes and that each one
//! closes; a token after an opening quote is the one after its closing quote.

use super::stack::Stack;

/// Whether `tokens`, stage 1's positions in `row`, are one JSON value.
pub(super) fn is_one_value(row: &[u8], tokens: &[u32]) -> bool {
    let mut walk = Walk { row, tokens, i: 0 };
    walk.document()
}

struct Walk<'a> {
    row: &'a [u8],
    tokens: &'a [u32],
    /// The next token's index in `tokens`.
    i: usize,
}

impl Walk<'_> {
    /// The next token's position and byte (0 after the last, which no token is), and on.
    #[inline(always)]
    fn next(&mut self) -> (usize, u8) {
        let token = self.peek();
        self.i += 1;
        token
    }

    #[inline(always)]
    fn peek(&self) -> (usize, u8) {
        match self.tokens.get(self.i) {
            Some(&p) => (p as usize, self.row[p as usize]),
            None => (self.row.len(), 0),
        }
    }

    fn document(&mut self) -> bool {
        let mut stack = Stack::default();
        loop {
            // A value, or the opening of one.
            let (p, c) = self.next();
            let scalar = match c {
                b'{' | b'[' => {
                    let object = c == b'{';
                    if self.peek().1 == if object { b'}' } else { b']' } {
                        self.i += 1;
                        true
                    } else {
                        stack.push(object);
                        if object && !self.key() {
                            return false;
                        }
                        continue;
                    }
                }
                b'"' => true,
                b't' => literal(self.row, p, b"true"),
                b'f' => literal(self.row, p, b"false"),
                b'n' => literal(self.row, p, b"null"),
                b'-' | b'0'..=b'9' => number(self.row, p),
                _ => false,
            };
            if !scalar {
                return false;
            }
            // After a value: close what ends here, up to the next comma.
            loop {
                let Some(object) = stack.innermost() else {
                    return self.i == self.tokens.len();
                };
                match self.next().1 {
                    b',' => {
                        if object && !self.key() {
                            return false;
                        }
                        break;
                    }
                    b'}' if object => stack.pop(),
                    b']' if !object => stack.pop(),
                    _ => return false,
                }
            }
        }
    }

    /// A member's name and its colon.
    #[inline(always)]
    fn key(&mut self) -> bool {
        let name = self.next().1;
        let colon = self.next().1;
        name == b'"' && colon == b':'
    }
}

/// Whether a number or literal ends at `end`: at the row's end, white space or structure.
/// Anything else (a letter, a quote, a byte of 0x80 or more) would be part of the same token.
#[inline(always)]
fn ends(row: &[u8], end: usize) -> bool {
    row.get(end).is_none_or(|c| {
        matches!(
            c,
            b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' | b'[' | b']' | b'{' | b'}'
        )
    })
}

fn literal(row: &[u8], p: usize, word: &[u8]) -> bool {
    row[p..].starts_with(word) && ends(row, p + word.len())
}

fn digits(row: &[u8], from: usize) -> usize {
    row.get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count()
}

/// A number at `p`: `-`?, `0` or a digit 1–9 and more digits, then `.` and digits?, then `e`
/// or `E`, a sign?, digits?, and its end.
fn number(row: &[u8], p: usize) -> bool {
    let mut e = p + usize::from(row[p] == b'-');
    match row.get(e) {
        Some(b'0') => e += 1,
        Some(b'1'..=b'9') => e += 1 + digits(row, e + 1),
        _ => return false,
    }
    if row.get(e) == Some(&b'.') {
        let n = digits(row, e + 1);
        if n == 0 {
            return false;
        }
        e += 1 + n;
    }
    if let Some(b'e' | b'E') = row.get(e) {
        e += 1;
        if let Some(b'+' | b'-') = row.get(e) {
            e += 1;
        }
        let n = digits(row, e);
        if n == 0 {
            return false;
        }
        e += n;
    }
    ends(row, e)
}
