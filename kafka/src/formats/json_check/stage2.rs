//! Stage 2 of the two-stage check: JSON's grammar over stage 1's token positions, as a table
//! of states (what may come next) by the token's kind, so that a step is a load from the
//! table, not a branch on the kind the predictor would have to guess, and where the next token
//! is no longer depends on where this one ends (stage 1 found them all). The open objects and
//! arrays are bits of a word (deeper ones spilled to a `Vec`), pushed and popped by the step
//! without a branch. Strings need nothing here: stage 1 checked their bytes and escapes and
//! that each one closes; a token after an opening quote is the one after its closing quote.
//! Numbers and literals are checked where they stand ([`scalar`]).

/// What a token's first byte makes it.
const OPEN_OBJECT: u8 = 0;
const OPEN_ARRAY: u8 = 1;
const CLOSE_OBJECT: u8 = 2;
const CLOSE_ARRAY: u8 = 3;
const COMMA: u8 = 4;
const COLON: u8 = 5;
const STRING: u8 = 6;
const SCALAR: u8 = 7;
const OTHER: u8 = 8;
const KINDS: usize = 9;

/// Each byte's kind as a token's first.
const KIND: [u8; 256] = {
    let mut kind = [OTHER; 256];
    kind[b'{' as usize] = OPEN_OBJECT;
    kind[b'[' as usize] = OPEN_ARRAY;
    kind[b'}' as usize] = CLOSE_OBJECT;
    kind[b']' as usize] = CLOSE_ARRAY;
    kind[b',' as usize] = COMMA;
    kind[b':' as usize] = COLON;
    kind[b'"' as usize] = STRING;
    let scalars = b"tfn-0123456789";
    let mut i = 0;
    while i < scalars.len() {
        kind[scalars[i] as usize] = SCALAR;
        i += 1;
    }
    kind
};

/// The states: what may come next.
const ERROR: u8 = 0;
const TOP: u8 = 1;
const VALUE_IN_OBJECT: u8 = 2;
const VALUE_IN_ARRAY: u8 = 3;
const FIRST_IN_ARRAY: u8 = 4;
const FIRST_IN_OBJECT: u8 = 5;
const NAME: u8 = 6;
const NAME_COLON: u8 = 7;
const AFTER_IN_OBJECT: u8 = 8;
const AFTER_IN_ARRAY: u8 = 9;
const DONE: u8 = 10;
const STATES: usize = 11;

/// What a step does to the open values besides its next state.
const PUSH_OBJECT: u8 = 1 << 4;
const PUSH_ARRAY: u8 = 2 << 4;
/// The next state is the one after a value in what is open after the pop.
const POP: u8 = 3 << 4;

/// The step from each state by each kind: the next state in the low 4 bits, the action above.
const STEP: [[u8; KINDS]; STATES] = {
    let mut step = [[ERROR; KINDS]; STATES];
    let value_in = [
        (TOP, DONE),
        (VALUE_IN_OBJECT, AFTER_IN_OBJECT),
        (VALUE_IN_ARRAY, AFTER_IN_ARRAY),
        (FIRST_IN_ARRAY, AFTER_IN_ARRAY),
    ];
    let mut i = 0;
    while i < value_in.len() {
        let (state, after) = value_in[i];
        let s = state as usize;
        step[s][OPEN_OBJECT as usize] = FIRST_IN_OBJECT | PUSH_OBJECT;
        step[s][OPEN_ARRAY as usize] = FIRST_IN_ARRAY | PUSH_ARRAY;
        step[s][STRING as usize] = after;
        step[s][SCALAR as usize] = after;
        i += 1;
    }
    step[FIRST_IN_ARRAY as usize][CLOSE_ARRAY as usize] = POP;
    step[FIRST_IN_OBJECT as usize][STRING as usize] = NAME_COLON;
    step[FIRST_IN_OBJECT as usize][CLOSE_OBJECT as usize] = POP;
    step[NAME as usize][STRING as usize] = NAME_COLON;
    step[NAME_COLON as usize][COLON as usize] = VALUE_IN_OBJECT;
    step[AFTER_IN_OBJECT as usize][COMMA as usize] = NAME;
    step[AFTER_IN_OBJECT as usize][CLOSE_OBJECT as usize] = POP;
    step[AFTER_IN_ARRAY as usize][COMMA as usize] = VALUE_IN_ARRAY;
    step[AFTER_IN_ARRAY as usize][CLOSE_ARRAY as usize] = POP;
    step
};

/// Whether `tokens`, stage 1's positions in `row`, are one JSON value.
pub(super) fn is_one_value(row: &[u8], tokens: &[u32]) -> bool {
    let mut state = TOP;
    let mut scalars_ok = true;
    // The open values, innermost in bit 0 (1 an object), `in_word` of them in `open`.
    let (mut open, mut in_word, mut depth) = (0_u64, 0_u32, 0_usize);
    let mut spilled: Vec<u64> = Vec::new();
    for &p in tokens {
        let p = p as usize;
        let kind = KIND[usize::from(row[p])];
        if kind == SCALAR {
            scalars_ok &= scalar(row, p);
        }
        let step = STEP[usize::from(state)][usize::from(kind)];
        let action = step & 0xF0;
        let (push, pop) = (action == PUSH_OBJECT || action == PUSH_ARRAY, action == POP);
        if push && in_word == 64 {
            spilled.push(open);
            (open, in_word) = (0, 0);
        }
        open = match (push, pop) {
            (true, _) => open << 1 | u64::from(action == PUSH_OBJECT),
            (_, true) => open >> 1,
            _ => open,
        };
        in_word = in_word + u32::from(push) - u32::from(pop);
        depth = depth + usize::from(push) - usize::from(pop);
        if pop && in_word == 0 && depth > 0 {
            // The innermost open value is the last spilled word's.
            (open, in_word) = (spilled.pop().unwrap_or(0), 64);
        }
        let after_pop = match (depth, open & 1) {
            (0, _) => DONE,
            (_, 1) => AFTER_IN_OBJECT,
            _ => AFTER_IN_ARRAY,
        };
        state = if pop { after_pop } else { step & 0x0F };
    }
    state == DONE && scalars_ok
}

/// Whether the number or literal at `p` is one, and ends where its run does.
fn scalar(row: &[u8], p: usize) -> bool {
    match row[p] {
        b't' => literal(row, p, b"true"),
        b'f' => literal(row, p, b"false"),
        b'n' => literal(row, p, b"null"),
        _ => number(row, p),
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
