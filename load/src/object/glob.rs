//! Globs over object keys: `exports/2026-*/part-*.parquet`. `*` is any run of characters but
//! `/`, `?` one character but `/`; nothing else is special. The listing asks the store for the
//! key's fixed part (up to the last `/` before the first `*` or `?`, `object::resolve`) and
//! matches whole keys here.

/// Whether `key` has a glob character.
pub(crate) fn has_glob(key: &str) -> bool {
    key.contains(['*', '?'])
}

/// Whether `key` matches `pattern` whole. Iterative, with one backtrack point: linear in the
/// key for every pattern (no exponential case for a hostile key or pattern).
pub(crate) fn matches(pattern: &str, key: &str) -> bool {
    let (p, k): (Vec<char>, Vec<char>) = (pattern.chars().collect(), key.chars().collect());
    let (mut pi, mut ki) = (0, 0);
    // The last `*` met and the key position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ki < k.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ki));
                pi += 1;
            }
            Some('?') if k[ki] != '/' => {
                pi += 1;
                ki += 1;
            }
            Some(&c) if c != '?' && c == k[ki] => {
                pi += 1;
                ki += 1;
            }
            _ => match star {
                // The `*` takes one more character, never a `/`.
                Some((sp, sk)) if k[sk] != '/' => {
                    star = Some((sp, sk + 1));
                    pi = sp + 1;
                    ki = sk + 1;
                }
                _ => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stays_within_one_segment() {
        let p = "exports/2026-*/part-*.parquet";
        assert!(matches(p, "exports/2026-01/part-0001.parquet"));
        assert!(matches(p, "exports/2026-/part-.parquet"));
        assert!(
            !matches(p, "exports/2026-01/x/part-1.parquet"),
            "`*` crossed a /"
        );
        assert!(!matches(p, "exports/2025-01/part-1.parquet"));
        assert!(!matches(p, "exports/2026-01/part-1.parquet.tmp"));
        assert!(matches("a?c", "abc") && !matches("a?c", "a/c"));
        assert!(matches("*", "abc") && !matches("*", "a/b"));
        assert!(!has_glob("exports/a.csv") && has_glob("e/*.csv"));
    }

    #[test]
    fn a_hostile_pattern_is_matched_in_linear_time() {
        let key = "a".repeat(10_000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!matches(&pattern, &key));
    }
}
