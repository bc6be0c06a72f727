//! A TCP proxy on loopback that can go silent the way a firewall or NAT that dropped a
//! connection's state does: [`Proxy::blackhole`] stops forwarding in both directions on
//! every connection open now, without closing them (no FIN, no RST: the peers wait
//! forever); connections made afterwards are forwarded. It counts the connections it
//! accepted and the bytes it forwarded, so a test can tell that its target's TCP port is
//! what a client used.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxy; dropping it stops accepting (open connections end with the test's runtime).
pub struct Proxy {
    port: u16,
    /// Bumped by [`Proxy::blackhole`]: a connection of an older generation forwards nothing.
    generation: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free loopback port in front of `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (generation, watch) = watch::channel(0_u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        let (a, f) = (accepted.clone(), forwarded.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let born = *watch.borrow();
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, (watch.clone(), born), f.clone()));
                tokio::spawn(pump(sr, cw, (watch.clone(), born), f.clone()));
            }
        });
        Self {
            port,
            generation,
            accepted,
            forwarded,
            task,
        }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every connection open now goes silent for good (both directions, kept open); new
    /// connections are forwarded.
    pub fn blackhole(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Bytes forwarded so far, both directions.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until either ends, or, once the proxy's generation passed `born`,
/// holds both open and forwards nothing more.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    (mut watch, born): (watch::Receiver<u64>, u64),
    forwarded: Arc<AtomicU64>,
) {
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        if *watch.borrow() != born {
            break;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            r = watch.changed() => match r {
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        if *watch.borrow() != born {
            break;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        forwarded.fetch_add(n as u64, Ordering::SeqCst);
    }
    // Silent: neither half is closed or read again (the peer's writes fill the buffers).
    std::future::pending::<()>().await;
    drop((from, to));
}
