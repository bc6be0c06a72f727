//! The faults and when they come: a fixed cycle of every fault, scaled to the run's length
//! (no randomness: the same `--minutes`, the same schedule).
//!
//! The first tenth of the run is warm-up (no fault). Then the cycle, once in a short run and
//! as many times as fit in a long one (a cycle is at most 12 minutes), each fault taking
//! `hold` (a 24th of a cycle, between 5 and 30 seconds), with the room between faults quiet
//! so each stall is the work of one fault. The last 5 % of the run is quiet too.

use std::fmt;
use std::time::Duration;

/// A fault the soak makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// SIGSTOP of an instance (the first), SIGCONT after `hold`.
    Stop,
    /// SIGKILL of an instance (the second), a new process in its place after `hold`.
    Kill,
    /// Two instances more, stopped (SIGTERM) at the fault's end: 3 → 5 → 3.
    ScaleOut,
    /// Latency on every chunk between the sinks (and the producer) and the broker.
    BrokerLatency,
    /// Every connection to the broker reset, new ones too, for the fault's time.
    BrokerReset,
    /// Nothing moves to or from the broker for the fault's time.
    BrokerBlackHole,
    /// Latency between the sinks and the emulator.
    EmulatorLatency,
    /// Every connection to the emulator reset.
    EmulatorReset,
    /// Nothing moves to or from the emulator.
    EmulatorBlackHole,
    /// The emulator's process stopped (SIGTERM) and started again on the same data.
    EmulatorRestart,
    /// The broker's process stopped (SIGTERM, a rolling restart's) and started again on the
    /// same storage.
    BrokerRestart,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Fault::Stop => "SIGSTOP of sink-1",
            Fault::Kill => "SIGKILL of sink-2 (restarted)",
            Fault::ScaleOut => "scale 3 -> 5 -> 3",
            Fault::BrokerLatency => "broker link: 200 ms latency",
            Fault::BrokerReset => "broker link: resets",
            Fault::BrokerBlackHole => "broker link: black hole",
            Fault::EmulatorLatency => "emulator link: 200 ms latency",
            Fault::EmulatorReset => "emulator link: resets",
            Fault::EmulatorBlackHole => "emulator link: black hole",
            Fault::EmulatorRestart => "emulator restart",
            Fault::BrokerRestart => "broker restart",
        };
        f.write_str(s)
    }
}

/// One fault of the schedule: from `at` for `hold`, both from the start of the run.
#[derive(Debug, Clone, Copy)]
pub(super) struct Planned {
    /// Which fault.
    pub fault: Fault,
    /// When it starts.
    pub at: Duration,
    /// How long it lasts.
    pub hold: Duration,
}

/// The cycle's faults in order; the broker restart only when the broker keeps its data.
fn cycle(broker_restart: bool) -> Vec<Fault> {
    let mut v = vec![
        Fault::Stop,
        Fault::Kill,
        Fault::BrokerLatency,
        Fault::BrokerReset,
        Fault::BrokerBlackHole,
        Fault::ScaleOut,
        Fault::EmulatorLatency,
        Fault::EmulatorReset,
        Fault::EmulatorBlackHole,
        Fault::EmulatorRestart,
    ];
    if broker_restart {
        v.push(Fault::BrokerRestart);
    }
    v
}

/// The schedule of a run whose producers write for `run`.
pub(super) fn schedule(run: Duration, broker_restart: bool) -> Vec<Planned> {
    let warm = run / 10;
    let usable = run.mul_f64(0.85);
    let most = Duration::from_secs(12 * 60);
    let cycles = (usable.as_secs_f64() / most.as_secs_f64()).ceil().max(1.0);
    let cycle_len = usable.div_f64(cycles);
    let hold = (cycle_len / 24).clamp(Duration::from_secs(5), Duration::from_secs(30));
    let faults = cycle(broker_restart);
    let step = cycle_len.div_f64(faults.len() as f64);
    let mut out = Vec::new();
    for c in 0..cycles as u32 {
        for (i, fault) in faults.iter().enumerate() {
            let at = warm + cycle_len * c + step.mul_f64(i as f64);
            out.push(Planned {
                fault: *fault,
                at,
                hold,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fault of the cycle comes once in a 3-minute run, after the warm-up, ends before
    /// the next starts, and all end before the quiet last 5 %.
    #[test]
    fn a_short_run_has_each_fault_once_apart_and_inside_the_run() {
        let run = Duration::from_secs(180);
        let s = schedule(run, true);
        assert_eq!(s.len(), 11);
        assert!(s[0].at >= run / 10);
        for w in s.windows(2) {
            assert!(w[0].at + w[0].hold < w[1].at, "{w:?}");
        }
        let last = s.last().unwrap();
        assert!(last.at + last.hold <= run.mul_f64(0.95), "{last:?}");
    }

    /// An hour repeats the cycle five times with faults of about 25 s; without the broker
    /// restart it is left out.
    #[test]
    fn an_hour_repeats_the_cycle() {
        let s = schedule(Duration::from_secs(3600), false);
        assert_eq!(s.len(), 50);
        assert!(s.iter().all(|p| p.fault != Fault::BrokerRestart));
        assert!(s
            .iter()
            .all(|p| p.hold > Duration::from_secs(20) && p.hold <= Duration::from_secs(30)));
    }
}
