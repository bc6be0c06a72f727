//! A surface's run: its seed, its case count, and the context every failure message carries.

use std::fmt;

use crate::rng::{mix, Rng};

/// One surface's run of the suite, from `HOSTILE_SEED` and `HOSTILE_CASES` or the defaults.
#[derive(Debug, Clone)]
pub struct Suite {
    surface: &'static str,
    seed: u64,
    cases: usize,
}

impl Suite {
    /// The suite for `surface`: the seed is `HOSTILE_SEED` (decimal or `0x` hex) or a fixed one
    /// derived from the surface's name; the count is `HOSTILE_CASES` or `default_cases`.
    ///
    /// # Panics
    /// When `HOSTILE_SEED` or `HOSTILE_CASES` is set but not a number (a typo must not quietly
    /// run the default).
    pub fn from_env(surface: &'static str, default_cases: usize) -> Self {
        let seed = match std::env::var("HOSTILE_SEED") {
            Ok(s) => parse_u64(&s).unwrap_or_else(|| {
                panic!("HOSTILE_SEED={s:?} is not a number (decimal or 0x hex)")
            }),
            Err(_) => fixed_seed(surface),
        };
        let cases = match std::env::var("HOSTILE_CASES") {
            Ok(s) => s
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("HOSTILE_CASES={s:?} is not a count")),
            Err(_) => default_cases,
        };
        eprintln!("hostile {surface}: seed {seed:#x}, {cases} case(s)");
        Self {
            surface,
            seed,
            cases,
        }
    }

    /// The surface's name.
    pub fn surface(&self) -> &'static str {
        self.surface
    }

    /// The suite's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How many cases to run.
    pub fn len(&self) -> usize {
        self.cases
    }

    /// Whether no case runs (`HOSTILE_CASES=0`).
    pub fn is_empty(&self) -> bool {
        self.cases == 0
    }

    /// The cases: the first `classes.len()` sweep every class once in order (so the default
    /// run covers each), the rest pick a class at random from their own seed.
    /// `HOSTILE_ONLY=Count,Depth` keeps only the cases of those classes (to isolate one); it
    /// may leave none (it names another surface's classes), which a caller must take as
    /// "skip": take the first with `.into_iter().next()`, never `.remove(0)` or `[0]`. When it
    /// leaves none, this prints why (`hostile <surface>: HOSTILE_ONLY=… leaves no case of …`).
    /// A check that must run whatever the filter takes [`Suite::always_case`].
    pub fn cases<C: Copy + fmt::Debug>(&self, classes: &[C]) -> Vec<Case<C>> {
        let only = std::env::var("HOSTILE_ONLY").unwrap_or_default();
        self.cases_only(classes, &only)
    }

    /// [`Suite::cases`] under the filter `only` (the value of `HOSTILE_ONLY`).
    fn cases_only<C: Copy + fmt::Debug>(&self, classes: &[C], only: &str) -> Vec<Case<C>> {
        assert!(!classes.is_empty(), "a surface needs at least one class");
        let keep = |c: &Case<C>| {
            only.is_empty()
                || only
                    .split(',')
                    .any(|o| o.trim() == format!("{:?}", c.class))
        };
        let all: Vec<Case<C>> = (0..self.cases).map(|i| self.case(classes, i)).collect();
        let kept: Vec<Case<C>> = all.into_iter().filter(keep).collect();
        if kept.is_empty() && self.cases > 0 {
            eprintln!(
                "hostile {}: HOSTILE_ONLY={only} leaves no case of {classes:?}: skipped",
                self.surface
            );
        }
        kept
    }

    /// The case of a check that must run whatever `HOSTILE_ONLY` says (a good run after the
    /// hostile cases landing every row, the server's run surviving them all): the run's first
    /// case (its index 0 and seed) with `class`, even when `HOSTILE_ONLY` names other classes
    /// or `HOSTILE_CASES=0`.
    pub fn always_case<C: Copy + fmt::Debug>(&self, class: C) -> Case<C> {
        self.case(&[class], 0)
    }

    /// Case `index`: its seed, its PRNG, and its class (`classes[index]` in the sweep, else
    /// one picked with its PRNG).
    fn case<C: Copy + fmt::Debug>(&self, classes: &[C], index: usize) -> Case<C> {
        let seed = if index == 0 {
            self.seed
        } else {
            mix(self.seed ^ index as u64)
        };
        let mut rng = Rng::new(seed);
        let class = match classes.get(index) {
            Some(c) => *c,
            None => *rng.pick(classes),
        };
        Case {
            surface: self.surface,
            suite_seed: self.seed,
            index,
            seed,
            class,
            rng,
        }
    }
}

impl Suite {
    /// Runs `check` on every case, going on past a failing one, then fails with every failing
    /// case's message (each carries its seed): one run shows all that a surface gets wrong.
    ///
    /// # Panics
    /// When any case failed.
    pub fn for_each<C: Copy + fmt::Debug>(&self, classes: &[C], check: impl FnMut(Case<C>)) {
        self.finish(self.failures(classes, check));
    }

    /// Runs `check` on every case, going on past a failing one; returns the failures' messages.
    pub fn failures<C: Copy + fmt::Debug>(
        &self,
        classes: &[C],
        check: impl FnMut(Case<C>),
    ) -> Vec<String> {
        failures_of(self.cases(classes), check)
    }

    /// Fails with every message in `failures`, if any.
    ///
    /// # Panics
    /// When `failures` is not empty.
    pub fn finish(&self, failures: Vec<String>) {
        if !failures.is_empty() {
            panic!(
                "hostile {}: {} check(s) failed:\n\n{}",
                self.surface,
                failures.len(),
                failures.join("\n\n")
            );
        }
    }
}

/// Runs `check` on each of `cases`, going on past a failing one; returns the failures' messages.
fn failures_of<C>(cases: Vec<Case<C>>, mut check: impl FnMut(Case<C>)) -> Vec<String> {
    cases
        .into_iter()
        .filter_map(|case| attempt(|| check(case)).err())
        .collect()
}

/// Runs `f`, turning a panic (a failed check) into its message.
///
/// # Errors
/// The panic's message when `f` panicked.
pub fn attempt(f: impl FnOnce()) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a check panicked with a value that is not text".to_owned())
    })
}

/// One generated case: its class, its own PRNG, and what a failure message must say.
#[derive(Debug, Clone)]
pub struct Case<C> {
    surface: &'static str,
    suite_seed: u64,
    /// The case's position in the run.
    pub index: usize,
    /// The case's own seed.
    pub seed: u64,
    /// What the case generates.
    pub class: C,
    /// The case's PRNG (seeded from `seed`).
    pub rng: Rng,
}

impl<C: fmt::Debug> Case<C> {
    /// Fails the test with `msg` and the seed and the command that reruns up to this case.
    pub fn fail(&self, msg: impl fmt::Display) -> ! {
        panic!("{}\n{msg}", self.context())
    }

    /// Where a failure came from: surface, case, class, seeds, and how to rerun it.
    pub fn context(&self) -> String {
        format!(
            "hostile {surface} case {index} ({class:?}), case seed {seed:#x}: rerun with \
             HOSTILE_SEED={suite:#x} HOSTILE_CASES={n} cargo test … hostile_{surface}",
            surface = self.surface,
            index = self.index,
            class = self.class,
            seed = self.seed,
            suite = self.suite_seed,
            n = self.index + 1,
        )
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// FNV-1a of the surface's name mixed with the number: fixed, and different per surface.
fn fixed_seed(surface: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in surface.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix(h ^ 81)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_cases_sweep_every_class_and_seeds_are_reproducible() {
        let s = Suite {
            surface: "x",
            seed: 5,
            cases: 7,
        };
        let cases = s.cases_only(&['a', 'b', 'c'], "");
        let classes: Vec<char> = cases.iter().map(|c| c.class).collect();
        assert_eq!(&classes[..3], &['a', 'b', 'c']);
        assert_eq!(cases[0].seed, 5);
        let again = s.cases_only(&['a', 'b', 'c'], "");
        assert_eq!(
            cases.iter().map(|c| (c.seed, c.class)).collect::<Vec<_>>(),
            again.iter().map(|c| (c.seed, c.class)).collect::<Vec<_>>()
        );
        assert!(cases[4]
            .context()
            .contains("HOSTILE_SEED=0x5 HOSTILE_CASES=5"));
    }

    #[test]
    fn for_each_runs_every_case_and_reports_each_failure() {
        let s = Suite {
            surface: "x",
            seed: 5,
            cases: 4,
        };
        let mut seen = 0;
        // `for_each` without the environment's `HOSTILE_ONLY`.
        let e = attempt(|| {
            s.finish(failures_of(s.cases_only(&[1u8, 2], ""), |c| {
                seen += 1;
                if c.class == 2 {
                    c.fail("two is bad");
                }
            }))
        })
        .expect_err("two cases of class 2 fail");
        assert_eq!(seen, 4);
        assert!(
            e.contains("2 check(s) failed") && e.contains("two is bad"),
            "{e}"
        );
    }

    #[test]
    fn a_filter_naming_another_class_leaves_no_case_but_the_always_case() {
        let s = Suite {
            surface: "x",
            seed: 5,
            cases: 3,
        };
        // `HOSTILE_ONLY` naming another generator's class: `cases` returns none ...
        assert!(s.cases_only(&['a', 'b'], "Count").is_empty());
        let b = s.cases_only(&['a', 'b'], "'b', Count");
        assert!(!b.is_empty() && b.iter().all(|c| c.class == 'b'));
        assert_eq!(s.cases_only(&['a', 'b'], "").len(), 3);
        // ... while the case of a check that must always run is there, the run's first case.
        let always = s.always_case('z');
        assert_eq!((always.index, always.seed, always.class), (0, 5, 'z'));
        let first = s.cases_only(&['z', 'y'], "").remove(0);
        assert_eq!((first.seed, first.class), (always.seed, always.class));
        let none = Suite { cases: 0, ..s };
        assert!(none.cases_only(&['a'], "").is_empty());
        assert_eq!(none.always_case('a').class, 'a');
    }

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_u64("0x1f"), Some(31));
        assert_eq!(parse_u64(" 42 "), Some(42));
        assert_eq!(parse_u64("x"), None);
        assert_ne!(fixed_seed("hostile_ndjson"), fixed_seed("hostile_csv"));
    }
}
