//! JSON text read one byte at a time without parsing it: [`outside_strings`] gives the bytes
//! that stand outside string literals, so a count of values or a depth of nesting is taken in
//! one pass, before a parser allocates what the text claims. Not a validator: a malformed
//! text gives its bytes all the same (the parser that follows says what is wrong).

/// The bytes of `text` outside its string literals, in order: a `"` that opens or closes a
/// string is left out with the string, and so is an escaped quote inside one.
pub fn outside_strings(text: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    text.iter().copied().filter(move |&b| {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            false
        } else if b == b'"' {
            in_string = true;
            false
        } else {
            true
        }
    })
}

#[cfg(test)]
mod tests {
    use super::outside_strings;

    #[test]
    fn brackets_and_quotes_inside_strings_are_left_out() {
        let text = br#"{"a":"[\"{,:}\"]","b":[1,{"c":"\\"}]}"#;
        let out: Vec<u8> = outside_strings(text).collect();
        assert_eq!(out, b"{:,:[1,{:}]}");
        assert_eq!(outside_strings(br#""unterminated [{"#).count(), 0);
        assert_eq!(outside_strings(b"").count(), 0);
    }
}
