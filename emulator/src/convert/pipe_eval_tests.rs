//! The tests of `pipe_eval.rs`'s `LIKE`: its answers against a reference, and its steps bounded.

use super::{like, LIKE_STEPS};

thread_local! {
    /// The steps of this thread's last [`like`] (the work is counted, not timed).
    pub(super) static LIKE_STEPS_TAKEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// LIKE by dynamic programming over (text, pattern) positions: the reference.
fn reference(text: &[char], pattern: &[char]) -> bool {
    let mut m = vec![vec![false; pattern.len() + 1]; text.len() + 1];
    m[text.len()][pattern.len()] = true;
    for t in (0..=text.len()).rev() {
        for p in (0..pattern.len()).rev() {
            m[t][p] = match pattern[p] {
                '%' => m[t][p + 1] || (t < text.len() && m[t + 1][p]),
                c => t < text.len() && (c == '_' || c == text[t]) && m[t + 1][p + 1],
            };
        }
    }
    m[0][0]
}

/// Every text and pattern of up to 5 characters over `a`, `b`, `%`, `_` (a fixed, complete
/// enumeration): the matcher answers as the reference does.
#[test]
fn like_answers_as_the_reference_on_every_short_input() {
    let alphabet = ['a', 'b', '%', '_'];
    let words = |max: usize, letters: &[char]| {
        let mut all = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..max {
            last = last
                .iter()
                .flat_map(|w: &Vec<char>| {
                    letters.iter().map(move |&c| [w.clone(), vec![c]].concat())
                })
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    };
    let texts = words(5, &alphabet[..2]);
    for pattern in words(5, &alphabet) {
        for text in &texts {
            assert_eq!(
                like(text, &pattern),
                Some(reference(text, &pattern)),
                "{:?} LIKE {:?}",
                text.iter().collect::<String>(),
                pattern.iter().collect::<String>()
            );
        }
    }
}

/// The inputs that took exponential time or overflowed the stack: 100,000 `a`s against
/// `%a%a%a%a%b`, and a pattern of 1,000 `%` (a million overflowed the stack; patterns are
/// now at most 1,000 characters), answer within (pattern + 1) × (text + 1) steps; a row's
/// 4 million characters against a 1,000-character pattern stop at [`LIKE_STEPS`]. The work
/// is counted, not timed (a loaded machine cannot fail it).
#[test]
fn hostile_patterns_answer_in_linear_time() {
    let text: Vec<char> = std::iter::repeat_n('a', 100_000).collect();
    let within = |pattern: &[char], text: &[char], answer: Option<bool>| {
        assert_eq!(like(text, pattern), answer);
        let steps = LIKE_STEPS_TAKEN.with(std::cell::Cell::get);
        let most = (pattern.len() as u64 + 1) * (text.len() as u64 + 1);
        assert!(
            steps <= most.min(LIKE_STEPS + 1),
            "{steps} steps, at most {most}"
        );
    };
    within(
        &"%a%a%a%a%b".chars().collect::<Vec<_>>(),
        &text,
        Some(false),
    );
    let many: Vec<char> = std::iter::repeat_n('%', 1000).chain(['b']).collect();
    within(&many, &text, Some(false));
    within(&['%'; 1000], &text, Some(true));
    // Both from the row: 4 million characters against `%` + 998 `a` + `b` would take
    // 4·10^9 steps; it stops at the budget.
    let long: Vec<char> = std::iter::repeat_n('a', 4_000_000).collect();
    let pattern: Vec<char> = std::iter::once('%')
        .chain(std::iter::repeat_n('a', 998))
        .chain(['b'])
        .collect();
    within(&pattern, &long, None);
    assert_eq!(LIKE_STEPS_TAKEN.with(std::cell::Cell::get), LIKE_STEPS + 1);
}
