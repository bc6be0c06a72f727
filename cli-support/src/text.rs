//! Text an outside party sent, cut to what a dead letter keeps of it.

/// The longest prefix of `s`, at a character boundary, whose JSON string form (escapes
/// counted: `\"`, `\\`, `\n`… two bytes, other control characters six) is at most `max` bytes:
/// what a dead letter keeps of a record too long to keep whole (`snowpipe load`'s rejected
/// files, the Kinesis path's dead letters).
pub fn cut_json_text(s: &str, max: usize) -> &str {
    let mut size = 0;
    for (at, c) in s.char_indices() {
        size += match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if size > max {
            return &s[..at];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::cut_json_text;

    #[test]
    fn text_is_cut_by_its_escaped_size_at_a_character_boundary() {
        assert_eq!(cut_json_text("abc", 3), "abc");
        assert_eq!(cut_json_text("\u{1}\u{1}", 11), "\u{1}");
        assert_eq!(cut_json_text("aé", 2), "a");
        assert_eq!(cut_json_text("ab\u{1}c", 7), "ab");
        assert_eq!(cut_json_text("ab\u{1}c", 8), "ab\u{1}");
        assert_eq!(cut_json_text("\"é", 3), "\"");
        assert_eq!(cut_json_text("\"é", 4), "\"é");
        // Each control character is six bytes escaped: 600 bytes hold 100 of them.
        let control = "\u{2}".repeat(10_000);
        assert_eq!(cut_json_text(&control, 600).chars().count(), 100);
    }
}
