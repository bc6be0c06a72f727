//! [`start_on`] and [`start_on_async`] with a real child process — this test binary run as a
//! small server (the ignored `serve_as_child`) — on a port another listener already holds.

use std::io::{BufRead as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

/// The variable that makes `serve_as_child` serve, on this port.
const CHILD_PORT: &str = "SERVER_START_TEST_CHILD_PORT";

/// A child server, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Not a test: the server the tests below start (this binary with `CHILD_PORT` set). It
/// binds 127.0.0.1:`CHILD_PORT` (exiting 3, saying why, when it cannot), says so on stderr,
/// and answers each connection with one line naming itself and its port.
#[test]
#[ignore = "the child server of a_server_that_loses_its_port_starts_on_another"]
fn serve_as_child() {
    let Some(port) = std::env::var(CHILD_PORT).ok() else {
        return;
    };
    let listener = match TcpListener::bind(format!("127.0.0.1:{port}")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("test server cannot bind 127.0.0.1:{port}: {e}");
            std::process::exit(3);
        }
    };
    eprintln!("test server listening on 127.0.0.1:{port}");
    for mut conn in listener.incoming().flatten() {
        let _ = writeln!(conn, "test server {port}");
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("server-start-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One start of the child server on `port`, its stderr in `dir`: ready when its own
/// listening line names the port.
fn start_child(dir: &Path, port: u16) -> std::io::Result<Attempt<Server>> {
    let log = dir.join(format!("server-{port}.log"));
    let child = Command::new(std::env::current_exe()?)
        .args(["--exact", "server_start::tests::serve_as_child"])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_PORT, port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let mut server = Server { child, port };
    let line = format!("test server listening on 127.0.0.1:{port}");
    match wait_ready(&mut server.child, Duration::from_secs(60), &mut || {
        log_has(&log, 0, &[&line])
    }) {
        Readiness::Ready => Ok(Attempt::Ready(server)),
        Readiness::Exited(_) => Ok(Attempt::Lost(log_tail(&log, 0, 5))),
        Readiness::TimedOut => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            log_tail(&log, 0, 5),
        )),
    }
}

/// What the server on `port` answers to a connection (its first line).
fn answer(port: u16) -> String {
    let conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut line = String::new();
    let _ = std::io::BufReader::new(conn).read_line(&mut line);
    line.trim_end().to_owned()
}

/// The first port picked is held by another listener (which accepts connections: a check
/// that only connects would call it ready): the server exits there, and starts on a second.
#[test]
fn a_server_that_loses_its_port_starts_on_another() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().port();
    let dir = scratch("taken");
    let mut ports = TakenFirst::new(taken);
    let server = start_on("the test server", &mut || ports.next_port(), &mut |port| {
        start_child(&dir, port)
    })
    .expect("started on another port");
    assert_eq!(
        ports.picked().len(),
        2,
        "one port taken, one used: {:?}",
        ports.picked()
    );
    assert_ne!(server.port, taken);
    assert_eq!(answer(server.port), format!("test server {}", server.port));
    assert!(
        TcpStream::connect(("127.0.0.1", taken)).is_ok(),
        "the held port accepts a connection: connecting is no proof of the server"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every port taken: the error names the server, the three ports and the last exit's words.
#[test]
fn three_lost_starts_are_an_error_naming_the_ports_and_the_exit() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().port();
    let dir = scratch("all-taken");
    let mut picks = 0;
    let err = start_on(
        "the test server",
        &mut || {
            picks += 1;
            Ok(taken)
        },
        &mut |port| start_child(&dir, port),
    )
    .err()
    .expect("no port to start on");
    assert_eq!(picks, TRIES);
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    let text = err.to_string();
    assert!(text.contains("the test server"), "{text}");
    assert!(
        text.contains(&format!("[{taken}, {taken}, {taken}]")),
        "{text}"
    );
    assert!(
        text.contains(&format!("test server cannot bind 127.0.0.1:{taken}")),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The async start moves on from a taken port as the blocking one does, with the start's own
/// error type.
#[tokio::test]
async fn an_async_start_that_loses_its_port_starts_on_another() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().port();
    let dir = scratch("taken-async");
    let mut ports = TakenFirst::new(taken);
    let started: Result<Server, Box<dyn std::error::Error>> =
        start_on_async("the test server", &mut || ports.next_port(), |port| {
            let dir = &dir;
            async move { Ok(start_child(dir, port)?) }
        })
        .await;
    let server = started.expect("started on another port");
    assert_eq!(ports.picked().len(), 2, "{:?}", ports.picked());
    assert_ne!(server.port, taken);
    assert_eq!(answer(server.port), format!("test server {}", server.port));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A line is found from the offset on, and only once its line break is written.
#[test]
fn a_log_line_is_whole_lines_from_the_offset() {
    let dir = scratch("log-line");
    let log = dir.join("a.log");
    std::fs::write(&log, "serving on 1\n").unwrap();
    let from = log_len(&log);
    assert_eq!(
        log_line(&log, 0, "serving").as_deref(),
        Some("serving on 1")
    );
    assert_eq!(log_line(&log, from, "serving"), None);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    write!(f, "serving on 12").unwrap();
    assert_eq!(log_line(&log, from, "serving"), None, "not whole yet");
    writeln!(f, "345").unwrap();
    assert_eq!(
        log_line(&log, from, "serving").as_deref(),
        Some("serving on 12345")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
