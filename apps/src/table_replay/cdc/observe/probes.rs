//! `/healthz` and `/readyz` of `table_replay follow --metrics-addr`: what they answer from,
//! written by the binlog loop's tick (`observe/mod.rs`).
//!
//! `/healthz` is 200 while the process is starting (connecting, the snapshot) and, once the
//! binlog is read, while its loop turns (it ticks every second; 503 after [`STALE_AFTER`]
//! without one). `/readyz` is 200 while the binlog stream is connected and no table is
//! stalled; 503 before the stream starts, while it is connected again, while a table is
//! stalled (listing them) and once `follow` is stopping. Each answers a line saying why.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use snowpipe_cli_support::probe_server::{Answer, LoopClock, Stalled};

/// `/healthz` fails once the binlog loop has not turned for this long (an append the SDK holds
/// for memory, a slow `ALTER` on the destination hold it for a while; the sink's default too).
pub const STALE_AFTER: Duration = Duration::from_secs(90);

/// What the probes answer from.
#[derive(Debug)]
pub struct Health {
    clock: LoopClock,
    streaming: AtomicBool,
    connected: AtomicBool,
    stopping: AtomicBool,
    stalled: Stalled,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            clock: LoopClock::new(STALE_AFTER),
            streaming: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            stalled: Stalled::default(),
        }
    }
}

impl Health {
    /// The binlog loop turned.
    pub fn tick(&self) {
        self.clock.tick();
    }

    /// The binlog stream is open (`true`) or lost, being connected again (`false`).
    pub fn connected(&self, up: bool) {
        if up {
            self.tick();
            self.streaming.store(true, Ordering::Relaxed);
        }
        self.connected.store(up, Ordering::Relaxed);
    }

    /// `follow` is stopping (a signal, idle, an error).
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The tables stalled now, each as `/readyz` names it.
    pub fn stalled(&self, tables: Vec<String>) {
        self.stalled.set(tables);
    }

    /// `/healthz`: `Ok(why)` or `Err(why)`.
    pub fn live(&self) -> Result<&'static str, String> {
        if !self.streaming.load(Ordering::Relaxed) {
            return Ok("starting: connecting, or taking the snapshot");
        }
        match self.clock.stuck_for() {
            Some(since) if !self.stopping.load(Ordering::Relaxed) => Err(format!(
                "the binlog loop has not turned for {}s",
                since.as_secs()
            )),
            _ => Ok("ok"),
        }
    }

    /// `/readyz`: `Ok(why)` or `Err(why)`.
    pub fn ready(&self) -> Result<&'static str, String> {
        self.live()
            .map_err(|_| "not live (see /healthz)".to_owned())?;
        if self.stopping.load(Ordering::Relaxed) {
            return Err("stopping".into());
        } else if !self.streaming.load(Ordering::Relaxed) {
            return Err("not reading the binlog yet (connecting, or taking the snapshot)".into());
        } else if !self.connected.load(Ordering::Relaxed) {
            return Err("the binlog connection was lost: connecting again".into());
        }
        self.stalled.ready()
    }

    /// The answer to `path`; `/metrics` is `metrics()`.
    pub fn answer(&self, path: &str, metrics: impl FnOnce() -> String) -> Answer {
        match path {
            "/metrics" => Answer::metrics(metrics()),
            "/healthz" => Answer::probe(self.live()),
            "/readyz" => Answer::probe(self.ready()),
            _ => Answer::not_found(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn ready_only_while_streaming_connected_and_not_stalled() {
        let h = Health::default();
        assert!(h.live().is_ok());
        assert!(h.ready().unwrap_err().contains("snapshot"));
        h.connected(true);
        assert_eq!(h.ready(), Ok("ready"));
        h.stalled(vec!["orders (nothing committed for 301s)".into()]);
        assert_eq!(
            h.ready(),
            Err("stalled: orders (nothing committed for 301s)".into())
        );
        h.stalled(Vec::new());
        h.connected(false);
        assert!(h.ready().unwrap_err().contains("connecting again"));
        h.connected(true);
        h.stopping();
        assert_eq!(h.ready(), Err("stopping".into()));
        assert_eq!(h.live(), Ok("ok"));
    }
}
