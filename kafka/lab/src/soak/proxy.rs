//! A TCP fault proxy: listens on a port of 127.0.0.1 and forwards each connection to its
//! upstream, passing bytes through as they come, or with a fault:
//!
//! * [`Mode::Latency`]: each chunk read is held that long before it is written on;
//! * [`Mode::Reset`]: every open connection is reset (RST, `SO_LINGER` 0) and new ones are
//!   reset as soon as they are accepted;
//! * [`Mode::BlackHole`]: nothing moves either way (bytes are held, not dropped, as on a link
//!   that stalls), new connections are accepted and wait; when it ends everything flows on.
//!
//! The sink reaches both services only through a proxy: the broker advertises the proxy's port
//! (so clients connect there after the bootstrap), and the emulator names the host a client
//! connected to as its ingest host (so the data plane follows the control plane's address).

use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Forward as they come.
    Pass,
    /// Hold each chunk this long.
    Latency(Duration),
    /// Reset every connection.
    Reset,
    /// Move nothing.
    BlackHole,
}

/// A running proxy; stops when dropped.
pub(super) struct Proxy {
    /// The port it listens on.
    pub port: u16,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on `port` (0: any) of 127.0.0.1, forwarding to `upstream` (`127.0.0.1:PORT`).
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub(super) async fn start(port: u16, upstream: String) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let (mode, watching) = watch::channel(Mode::Pass);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = watching.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let _ = connection(client, &upstream, mode).await;
                });
            }
        });
        Ok(Self { port, mode, task })
    }

    /// Sets what the proxy does from now on.
    pub(super) fn set(&self, mode: Mode) {
        let _ = self.mode.send(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Resets `stream` (RST instead of FIN).
fn reset(stream: TcpStream) {
    // A zero linger never blocks the close: the kernel sends RST and drops the buffers.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// One connection: waits out a black hole, then connects upstream and pumps both ways until
/// either side closes or a reset comes.
async fn connection(
    client: TcpStream,
    upstream: &str,
    mut mode: watch::Receiver<Mode>,
) -> Result<()> {
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Reset => {
                reset(client);
                return Ok(());
            }
            Mode::BlackHole => {
                mode.changed().await?;
            }
            _ => break,
        }
    }
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(_) => {
            reset(client);
            return Ok(());
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = tokio::spawn(pump(cr, sw, mode.clone()));
    let down = tokio::spawn(pump(sr, cw, mode));
    // When one direction ends, the other is not waited for: a half-closed connection is the
    // peer's to finish, and a reset ends both.
    let (a, b) = tokio::join!(up, down);
    let halves = [a.ok().flatten(), b.ok().flatten()];
    // Both halves of a stream back together, to reset it when a reset ended the pump.
    if let [Some((r1, w1)), Some((r2, w2))] = halves {
        if let (Ok(c), Ok(s)) = (r1.reunite(w2), r2.reunite(w1)) {
            reset(c);
            reset(s);
        }
    }
    Ok(())
}

/// What the mode in force lets a pump do next.
enum Gate {
    /// Bytes may pass, held this long first (`None`: at once).
    Open(Option<Duration>),
    /// Reset the connection.
    Reset,
    /// The proxy is gone.
    Closed,
}

/// Waits out a black hole, then says what the mode in force lets through.
async fn gate(mode: &mut watch::Receiver<Mode>) -> Gate {
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Pass => return Gate::Open(None),
            Mode::Latency(d) => return Gate::Open(Some(d)),
            Mode::Reset => return Gate::Reset,
            Mode::BlackHole => {}
        }
        if mode.changed().await.is_err() {
            return Gate::Closed;
        }
    }
}

/// Copies `from` to `to` under the proxy's mode. Returns the halves when a reset ended it (so
/// the caller resets both streams), `None` when a side closed.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) -> Option<(OwnedReadHalf, OwnedWriteHalf)> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match gate(&mut mode).await {
            Gate::Reset => return Some((from, to)),
            Gate::Closed => return None,
            Gate::Open(_) => {}
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return None;
                }
                Ok(n) => n,
            },
            changed = mode.changed() => {
                if changed.is_err() {
                    return None;
                }
                continue;
            }
        };
        // Bytes read are written on after the fault in force when they arrived: a black hole
        // that starts now holds them until it ends.
        match gate(&mut mode).await {
            Gate::Reset => return Some((from, to)),
            Gate::Closed => return None,
            Gate::Open(Some(latency)) => tokio::time::sleep(latency).await,
            Gate::Open(None) => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port: writes back what each connection sends.
    async fn echo() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(text).await?;
        let mut buf = vec![0u8; text.len()];
        s.read_exact(&mut buf).await?;
        Ok(buf)
    }

    /// Bytes pass, and pass late under latency; a black hole holds them until it ends and
    /// then delivers them; a reset breaks the open connection and the next one works again.
    #[tokio::test]
    async fn the_proxy_passes_holds_and_resets() {
        let proxy = Proxy::start(0, echo().await).await.unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        assert_eq!(round_trip(&mut s, b"one").await.unwrap(), b"one");

        proxy.set(Mode::Latency(Duration::from_millis(20)));
        assert_eq!(round_trip(&mut s, b"two").await.unwrap(), b"two");

        proxy.set(Mode::BlackHole);
        s.write_all(b"held").await.unwrap();
        let mut buf = [0u8; 4];
        let early = tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut buf)).await;
        assert!(early.is_err(), "a black hole let bytes through: {early:?}");
        proxy.set(Mode::Pass);
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"held");

        proxy.set(Mode::Reset);
        let broken = round_trip(&mut s, b"gone").await;
        assert!(
            broken.is_err(),
            "a reset connection still answered: {broken:?}"
        );
        proxy.set(Mode::Pass);
        let mut again = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        assert_eq!(round_trip(&mut again, b"back").await.unwrap(), b"back");
    }
}
