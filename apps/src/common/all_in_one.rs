//! The shape the all-in-one runs (`ski_resort`'s and `sensor_stream`'s) share: an embedded
//! emulator with a client builder on it ([`start_embedded`], [`connect_embedded`]), a
//! producer task beside the consumer ([`Producer`]: the generator, the publisher), a progress
//! display ([`Display`]), and the wind-down that stops the display before closing the client
//! ([`stop_and_close`]).
//!
//! The order at the end of a run is the same in both: the consumer ends (a failed one stops the
//! producer), the producer is joined, the display stops, the client closes; which error is
//! reported first is each run's own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use snowpipe_emulator::{Emulator, EmulatorConfig};
use snowpipe_streaming::{ClientBuilder, StreamingIngestClient};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts an application's embedded emulator from `config` with a new key pair registered
/// ([`Emulator::start_with_new_key`]) and a client builder for it: account `account`, user
/// `STREAMING_INGEST`, that key.
///
/// # Errors
/// When the key cannot be generated or the emulator cannot start.
///
/// # Cancellation
/// Dropping the future before it completes stops the emulator it was starting.
pub async fn start_embedded(
    config: EmulatorConfig,
    account: &str,
) -> Result<(Emulator, ClientBuilder)> {
    let (emulator, key) = Emulator::start_with_new_key(config)
        .await
        .context("cannot start the embedded emulator")?;
    let builder = StreamingIngestClient::builder()
        .account(account)
        .user("STREAMING_INGEST")
        .url(emulator.url())
        .private_key_pem(key.private_key_pem());
    Ok((emulator, builder))
}

/// The client of an embedded emulator, from [`start_embedded`]'s builder.
///
/// # Errors
/// When the client cannot connect.
pub async fn connect_embedded(builder: ClientBuilder) -> Result<StreamingIngestClient> {
    builder
        .build()
        .await
        .context("cannot connect to the embedded emulator")
}

/// A producer running beside the consumer: its task and the flag that stops it.
pub struct Producer<T> {
    /// What it is, for "… panicked".
    what: &'static str,
    stop: Arc<AtomicBool>,
    task: JoinHandle<Result<T>>,
}

impl<T> Producer<T> {
    /// A producer named `what` running as `task`, stopped by raising `stop`.
    pub fn new(what: &'static str, stop: Arc<AtomicBool>, task: JoinHandle<Result<T>>) -> Self {
        Producer { what, stop, task }
    }

    /// Waits for the producer to end.
    ///
    /// # Errors
    /// When it panicked (the outer error); the inner result is the producer's own.
    pub async fn join(self) -> Result<Result<T>> {
        let what = self.what;
        self.task.await.with_context(|| format!("{what} panicked"))
    }

    /// Waits for the producer after the consumer ended with `consumed`: a failed consumer
    /// stops it first.
    ///
    /// # Errors
    /// As [`Producer::join`].
    pub async fn join_after<U>(self, consumed: &Result<U>) -> Result<Result<T>> {
        if consumed.is_err() {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.join().await
    }
}

/// A progress display task and the flag that stops it.
pub struct Display {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Display {
    /// Starts a display with `spawn`, which gets the stop flag.
    pub fn spawn(spawn: impl FnOnce(watch::Receiver<bool>) -> JoinHandle<()>) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        Display {
            stop,
            task: spawn(stop_rx),
        }
    }

    /// Stops the display and waits for its last line.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Stops `display`, then closes `client`.
///
/// # Errors
/// When closing the client failed (what was not committed by then).
pub async fn stop_and_close(display: Display, client: &StreamingIngestClient) -> Result<()> {
    display.stop().await;
    client.close().await.context("closing the client failed")
}
