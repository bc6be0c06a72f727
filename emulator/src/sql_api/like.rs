//! SQL `LIKE` as Snowflake's `SHOW … LIKE '<pattern>'` reads it: `%` any run of characters,
//! `_` any one, `\` escapes the next; case-insensitive.
//!
//! Matched in time proportional to pattern × text at worst (one saved `%` to return to, the
//! classic wildcard match), not by trying every split: `%%%…%b` against a long name would take
//! exponential time that way, and any caller of the SQL API chooses the pattern.

/// One pattern element.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    Any,
    One,
    Char(char),
}

fn parts(pattern: &str) -> Vec<Part> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '%' => Part::Any,
            '_' => Part::One,
            '\\' => Part::Char(chars.next().unwrap_or('\\')),
            c => Part::Char(c),
        });
    }
    out
}

fn same(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

#[cfg(test)]
thread_local! {
    /// Steps of [`like`]'s loop on this thread (tests: the work is bounded by pattern × text).
    static STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether `text` matches the `LIKE` `pattern`.
pub(crate) fn like(pattern: &str, text: &str) -> bool {
    let p = parts(pattern);
    let t: Vec<char> = text.chars().collect();
    let (mut i, mut j) = (0, 0);
    // The last `%` seen and the text position it is tried from.
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        #[cfg(test)]
        STEPS.with(|s| s.set(s.get() + 1));
        match p.get(i) {
            Some(Part::Any) => {
                star = Some((i, j));
                i += 1;
            }
            Some(Part::One) => {
                i += 1;
                j += 1;
            }
            Some(Part::Char(c)) if same(*c, t[j]) => {
                i += 1;
                j += 1;
            }
            _ => match star {
                // Let the last `%` take one more character and try again after it.
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i.min(p.len())..].iter().all(|x| *x == Part::Any)
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_reads_percent_underscore_escapes_and_ignores_case() {
        for (pattern, text, want) in [
            ("orders", "ORDERS", true),
            ("ORDERS%", "ORDERSX", true),
            ("ORDERS%", "ORDER", false),
            ("%", "", true),
            ("", "", true),
            ("", "a", false),
            ("_", "", false),
            ("a_c", "abc", true),
            ("a\\_c", "abc", false),
            ("a\\_c", "a_c", true),
            ("%b%", "abc", true),
            ("%b", "abc", false),
            ("a%c%e", "abcde", true),
            ("a%c%e", "abcdf", false),
            ("%%a%%", "xxaxx", true),
            ("ÉTÉ%", "été_2024", true),
        ] {
            assert_eq!(like(pattern, text), want, "{pattern:?} ~ {text:?}");
        }
    }

    /// The work is counted, not timed: the loop's steps stay within (pattern + 1) × (text +
    /// 1), where trying every split would take exponentially many.
    #[test]
    fn a_hostile_pattern_takes_linear_time_not_exponential() {
        let pattern = format!("{}b", "%a".repeat(40));
        let text = "a".repeat(255);
        super::STEPS.with(|s| s.set(0));
        assert!(!like(&pattern, &text));
        let steps = super::STEPS.with(std::cell::Cell::get);
        let most = (pattern.len() + 1) * (text.len() + 1);
        assert!(steps <= most, "{steps} steps, at most {most}");
    }
}
