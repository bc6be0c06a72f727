//! The offset-token check the emulator makes for its users: does an append's token span name
//! its rows?
//!
//! Snowflake stores an append's `endOffsetToken` as the channel's committed token once the
//! append is committed, so an application resuming after that token expects the table to hold
//! exactly the rows up to it. A client that ends a request in the middle of an append (rows
//! beyond the end token), or sends a piece whose start token is after its end token, breaks
//! that. The emulator cannot know every application's token scheme, so it checks only numeric
//! tokens (canonical unsigned integers), and only what no per-row scheme allows.

/// What is wrong with an append of `rows` rows carrying `start` and `end` offset tokens, or
/// `None`. Checked when both tokens are canonical unsigned integers:
/// * the start token is after the end token;
/// * the span names several tokens (`start < end`) but fewer than there are rows: with one
///   token per row (dense or sparse), `rows <= end - start + 1`.
///
/// One token for a whole append (`start == end`) is accepted for any number of rows.
pub fn offset_span_violation(start: Option<&str>, end: Option<&str>, rows: u64) -> Option<String> {
    let (s, e) = (number(start?)?, number(end?)?);
    if s > e {
        return Some(format!(
            "offset tokens out of order: startOffsetToken={s} is after endOffsetToken={e} \
             ({rows} rows); a request must carry exactly the rows from its start token to its \
             end token"
        ));
    }
    let span = e - s + 1;
    (s < e && rows > span).then(|| {
        format!(
            "offset tokens {s}..{e} name {span} rows but the request carries {rows}: rows past \
             the end token would be committed under it, and an application resuming after \
             endOffsetToken={e} would write them again"
        )
    })
}

fn number(t: &str) -> Option<u64> {
    let canonical = !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit())
        && !(t.len() > 1 && t.starts_with('0'));
    canonical.then(|| t.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::offset_span_violation as check;

    #[test]
    fn reversed_and_overfull_spans_are_violations() {
        assert!(check(Some("2001"), Some("2000"), 329).is_some());
        let v = check(Some("1"), Some("300"), 329).unwrap();
        assert!(
            v.contains("name 300 rows but the request carries 329"),
            "{v}"
        );
    }

    #[test]
    fn dense_sparse_single_and_non_numeric_tokens_pass() {
        assert_eq!(check(Some("1"), Some("300"), 300), None);
        assert_eq!(check(Some("1"), Some("900"), 300), None, "sparse");
        assert_eq!(
            check(Some("7"), Some("7"), 5000),
            None,
            "one token per append"
        );
        assert_eq!(check(None, Some("7"), 5000), None);
        assert_eq!(check(Some("a"), Some("b"), 5000), None);
        assert_eq!(check(Some("010"), Some("9"), 5), None, "not canonical");
    }
}
