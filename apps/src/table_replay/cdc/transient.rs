//! A source read that failed for a passing reason (the connection dropped, a lock wait or a
//! deadlock timed out, too many connections) is tried again a few times with a growing
//! pause before it stops `follow`: the `information_schema` reads of a shape change
//! (`evolve.rs`) meet a busy server most when DDL comes fast.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;

use crate::common::say::say_warn;

/// The pauses before each try again: four tries in all, 3.5 s of waiting at most.
const PAUSES: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_millis(1_000),
    Duration::from_millis(2_000),
];

/// MariaDB/MySQL server errors that pass: lock wait timeout (1205), deadlock (1213), too
/// many connections (1040), shutdown in progress (1053), connection killed (1927), lost
/// or gone (2006, 2013), network read/write errors (1158–1161).
const PASSING: [u16; 10] = [1205, 1213, 1040, 1053, 1927, 2006, 2013, 1158, 1159, 1161];

/// Whether `e` is a source error worth trying again: an I/O error, or a server error that
/// passes.
pub(super) fn passing(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        match cause.downcast_ref::<mysql_async::Error>() {
            Some(mysql_async::Error::Io(_)) => true,
            Some(mysql_async::Error::Server(s)) => PASSING.contains(&s.code),
            Some(mysql_async::Error::Driver(d)) => {
                matches!(d, mysql_async::DriverError::ConnectionClosed)
            }
            _ => false,
        }
    })
}

/// Runs `read` (`what` names it) and, while it fails for a passing reason, again after
/// each of `PAUSES`.
///
/// # Errors
/// The last error, or the first that does not pass.
pub(super) async fn retried<T, F, Fut>(what: &str, mut read: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    for pause in PAUSES {
        match read().await {
            Err(e) if passing(&e) => {
                say_warn!("{what} failed ({e:#}); trying again in {pause:?}");
                tokio::time::sleep(pause).await;
            }
            done => return done,
        }
    }
    read().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_waits_and_lost_connections_pass_and_a_missing_table_does_not() {
        let server = |code: u16| {
            anyhow::Error::new(mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: "m".into(),
                state: "HY000".into(),
            }))
        };
        assert!(passing(&server(1205).context("reading information_schema")));
        assert!(passing(&server(2013)));
        assert!(!passing(&server(1146)));
        assert!(!passing(&anyhow::anyhow!("column g has type inet6")));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(passing(&anyhow::Error::new(io).context("cannot connect")));
    }

    #[tokio::test]
    async fn a_passing_error_is_tried_again_and_a_lasting_one_is_not() {
        let mut tries = 0;
        let got = retried("a read", || {
            tries += 1;
            let n = tries;
            async move {
                if n < 3 {
                    Err(anyhow::Error::new(std::io::Error::other("gone")))
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(got, 3);
        let mut tries = 0;
        let err = retried("a read", || {
            tries += 1;
            async { Err::<(), _>(anyhow::anyhow!("table t not found")) }
        })
        .await
        .unwrap_err();
        assert_eq!(tries, 1, "{err}");
    }
}
