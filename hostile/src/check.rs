//! The suite's assertions. Each takes the [`Case`] so its failure message carries the seed.

use std::fmt::Debug;
use std::time::Duration;

use crate::run::{Limits, Outcome};
use crate::suite::Case;
use crate::RSS_SLACK_BYTES;

/// What in stderr means the process died rather than refused: a panic, an allocation failure,
/// a stack overflow, a runtime abort.
const CRASH_MARKERS: [&str; 5] = [
    "panicked at",
    "memory allocation of",
    "has overflowed its stack",
    "fatal runtime error",
    "Aborted",
];

/// The run neither crashed (signal, panic, allocation failure, stack overflow) nor hung.
pub fn no_crash<C: Debug>(case: &Case<C>, o: &Outcome) {
    if o.timed_out {
        case.fail(format!(
            "the binary did not finish within its wall limit: {}",
            o.summary()
        ));
    }
    if o.signal.is_some() {
        case.fail(format!(
            "the binary was killed by a signal: {}",
            o.summary()
        ));
    }
    let err = o.stderr_text();
    if let Some(m) = CRASH_MARKERS.iter().find(|m| err.contains(*m)) {
        case.fail(format!(
            "the binary crashed ({m:?} in stderr): {}",
            o.summary()
        ));
    }
}

/// Peak RSS at most the budget + 64 MB.
pub fn rss_within<C: Debug>(case: &Case<C>, o: &Outcome, limits: &Limits) {
    let allowed = limits.budget_bytes + RSS_SLACK_BYTES;
    if o.peak_rss_bytes > allowed {
        case.fail(format!(
            "peak RSS {} MiB is over the budget {} MiB + 64 MiB: {}",
            o.peak_rss_bytes >> 20,
            limits.budget_bytes >> 20,
            o.summary()
        ));
    }
}

/// Exit non-zero (not a crash) with stderr naming every one of `needles` (the input, the
/// limit, the fix).
pub fn refused_naming<C: Debug>(case: &Case<C>, o: &Outcome, needles: &[&str]) {
    no_crash(case, o);
    if matches!(o.code, Some(0) | None) {
        case.fail(format!(
            "expected a refusal (non-zero exit): {}",
            o.summary()
        ));
    }
    let err = o.stderr_text();
    for n in needles {
        if !err.contains(n) {
            case.fail(format!("the error does not name {n:?}: {}", o.summary()));
        }
    }
}

/// Exit 0, no crash.
pub fn exited_ok<C: Debug>(case: &Case<C>, o: &Outcome) {
    no_crash(case, o);
    if o.code != Some(0) {
        case.fail(format!("expected exit 0: {}", o.summary()));
    }
}

/// `haystack` (a dead letter, a log, a summary) contains `needle`.
pub fn names<C: Debug>(case: &Case<C>, what: &str, haystack: &str, needle: &str) {
    if !haystack.contains(needle) {
        let shown: String = haystack.chars().take(2000).collect();
        case.fail(format!("{what} does not name {needle:?}: {shown}"));
    }
}

/// CPU at the larger size is at most `factor` × CPU at the smaller + `slack` (linear work
/// doubles; quadratic work quadruples). `factor` is for sizes in the ratio 2:1; choose
/// `slack` above the binary's fixed start-up cost so noise cannot fail it.
pub fn assert_linear<C: Debug>(
    case: &Case<C>,
    small: (u64, &Outcome),
    large: (u64, &Outcome),
    factor: f64,
    slack: Duration,
) {
    let allowed = small.1.cpu.mul_f64(factor) + slack;
    eprintln!(
        "hostile linear check: size {} {:.2?} CPU, size {} {:.2?} CPU (allowed {:.2?})",
        small.0, small.1.cpu, large.0, large.1.cpu, allowed
    );
    if large.1.cpu > allowed {
        case.fail(format!(
            "CPU is not linear in the input's size: size {} took {:.2?}, size {} took {:.2?} \
             (allowed {factor} × + {slack:.2?} = {allowed:.2?})",
            small.0, small.1.cpu, large.0, large.1.cpu
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;

    fn outcome(code: Option<i32>, stderr: &str, rss_mib: u64, cpu_ms: u64) -> Outcome {
        Outcome {
            code,
            signal: None,
            timed_out: false,
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
            peak_rss_bytes: rss_mib << 20,
            cpu: Duration::from_millis(cpu_ms),
        }
    }

    fn case() -> Case<u8> {
        Suite::from_env("check_self_test", 1).always_case(0u8)
    }

    fn fails(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let e = std::panic::catch_unwind(f).expect_err("expected the check to fail");
        e.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn each_check_fails_on_what_it_guards_and_says_the_seed() {
        let limits = Limits::with_budget(100 << 20);
        let m = fails(|| rss_within(&case(), &outcome(Some(0), "", 200, 0), &limits));
        assert!(
            m.contains("HOSTILE_SEED=") && m.contains("peak RSS 200 MiB"),
            "{m}"
        );
        rss_within(&case(), &outcome(Some(0), "", 150, 0), &limits);

        let m = fails(|| refused_naming(&case(), &outcome(Some(1), "bad", 1, 0), &["line 3"]));
        assert!(m.contains("\"line 3\""), "{m}");
        refused_naming(
            &case(),
            &outcome(Some(1), "bad at line 3", 1, 0),
            &["line 3"],
        );
        fails(|| refused_naming(&case(), &outcome(Some(0), "line 3", 1, 0), &["line 3"]));
        let m = fails(|| {
            no_crash(
                &case(),
                &outcome(None, "memory allocation of 8 bytes failed", 1, 0),
            )
        });
        assert!(m.contains("crashed"), "{m}");

        let small = outcome(Some(0), "", 1, 1000);
        assert_linear(
            &case(),
            (1, &small),
            (2, &outcome(Some(0), "", 1, 2100)),
            2.5,
            Duration::from_millis(200),
        );
        fails(|| {
            assert_linear(
                &case(),
                (1, &small),
                (2, &outcome(Some(0), "", 1, 4000)),
                2.5,
                Duration::from_millis(200),
            )
        });
    }
}
