//! The hostile answers: each writes to the client's connection what a hostile or broken server
//! would, some instead of asking the emulator, some by corrupting the emulator's own answer.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use snowpipe_hostile::http::{self, gzip_bomb, respond};
use snowpipe_hostile::{gen, Rng};

/// What a hostile server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// `Transfer-Encoding: chunked`, chunks without end (stopped at 2 GiB or a closed socket).
    EndlessChunked,
    /// `Content-Length: 2^62`, then bytes until the client stops reading.
    HugeLength,
    /// `Content-Encoding: gzip`: 1.7 MB that inflate to 256 MiB of spaces.
    GzipBomb,
    /// JSON nested 50,000 deep.
    DeepJson,
    /// The emulator's answer with every value of another type.
    WrongTypes,
    /// The emulator's answer with invalid UTF-8 inside its first string.
    InvalidUtf8,
    /// 429 with `Retry-After: 99999999999999999999`.
    RetryAfterHuge,
    /// 429 with `Retry-After: -5`.
    RetryAfterNegative,
    /// The token answer with a lifetime of 10^18 s.
    TokenForever,
    /// The committed offset tokens moved back to the file's start.
    CommittedBackwards,
    /// The committed offset tokens moved past the file's end (a commit never made).
    CommittedAhead,
    /// The statuses under another channel's name.
    OtherChannel,
    /// 503.
    Unavailable,
    /// Half of the emulator's answer, then a TCP reset.
    ResetMidway,
    /// The emulator's answer a byte every 100 ms.
    SlowDrip,
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json";

/// Writes `a`'s answer on `conn`; `upstream` asks the emulator (the request is forwarded).
///
/// # Errors
/// When the client is gone (expected: it stops reading what is past its caps).
pub(super) fn hostile(
    a: Answer,
    conn: &mut TcpStream,
    upstream: impl FnOnce() -> std::io::Result<(String, Vec<u8>)>,
) -> std::io::Result<()> {
    match a {
        Answer::EndlessChunked => http::endless_chunked(conn, OK),
        Answer::HugeLength => http::huge_length(conn, OK),
        Answer::GzipBomb => conn.write_all(&respond(OK, gzip_bomb(), &["Content-Encoding: gzip"])),
        Answer::DeepJson => {
            let mut body = b"{\"hostname\":".to_vec();
            gen::nested_json(&mut body, 50_000, &mut Rng::new(81));
            body.push(b'}');
            conn.write_all(&respond(OK, &body, &[]))
        }
        Answer::RetryAfterHuge | Answer::RetryAfterNegative | Answer::Unavailable => {
            let (status, after) = match a {
                Answer::RetryAfterHuge => ("429 Too Many Requests", "99999999999999999999"),
                Answer::RetryAfterNegative => ("429 Too Many Requests", "-5"),
                _ => ("503 Service Unavailable", "1"),
            };
            let head = format!("HTTP/1.1 {status}\r\nContent-Type: application/json");
            let after = format!("Retry-After: {after}");
            conn.write_all(&respond(&head, b"{\"message\":\"busy\"}", &[&after]))
        }
        Answer::ResetMidway => {
            let (head, body) = upstream()?;
            let whole = respond(&head, &body, &[]);
            conn.write_all(&whole[..whole.len() / 2])?;
            http::reset(conn);
            Ok(())
        }
        Answer::SlowDrip => {
            let (head, body) = upstream()?;
            http::drip(
                conn,
                &respond(&head, &body, &[]),
                Duration::from_millis(100),
            )
        }
        _ => {
            let (head, body) = upstream()?;
            let body = corrupt(a, &body);
            conn.write_all(&respond(&head, &body, &[]))
        }
    }
}

/// The emulator's answer `body` corrupted as `a` says.
fn corrupt(a: Answer, body: &[u8]) -> Vec<u8> {
    if a == Answer::InvalidUtf8 {
        return http::invalid_utf8_in_first_string(body);
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        // The hostname answer is bare text.
        return match a {
            Answer::WrongTypes => b"{\"hostname\":[1,2,3]}".to_vec(),
            _ => body.to_vec(),
        };
    };
    match a {
        Answer::WrongTypes => v = wrong_type(v),
        Answer::TokenForever => {
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "expires_in".into(),
                    Value::from(1_000_000_000_000_000_000u64),
                );
            }
        }
        _ => rewrite_statuses(a, &mut v),
    }
    serde_json::to_vec(&v).unwrap()
}

/// Every value turned into one of another type (objects keep their keys).
fn wrong_type(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, wrong_type(v))).collect()),
        Value::String(s) => Value::from(s.len()),
        Value::Number(_) => Value::from("7"),
        Value::Bool(b) => Value::from(vec![b]),
        Value::Null => Value::Bool(true),
        Value::Array(a) => Value::from(a.len()),
    }
}

/// The channel statuses of an open or status answer rewritten as `a` says.
fn rewrite_statuses(a: Answer, v: &mut Value) {
    if let Some(s) = v.get_mut("channel_status") {
        rewrite_one(a, s);
    }
    if let Some(Value::Object(map)) = v.get_mut("channel_statuses") {
        let old = std::mem::take(map);
        for (name, mut s) in old {
            rewrite_one(a, &mut s);
            let name = if a == Answer::OtherChannel {
                format!("OTHER_{name}")
            } else {
                name
            };
            map.insert(name, s);
        }
    }
}

fn rewrite_one(a: Answer, s: &mut Value) {
    let Some(o) = s.as_object_mut() else { return };
    match a {
        Answer::OtherChannel => {
            if let Some(Value::String(n)) = o.get_mut("channel_name") {
                *n = format!("OTHER_{n}");
            }
        }
        Answer::CommittedBackwards | Answer::CommittedAhead => {
            if let Some(Value::String(t)) = o.get_mut("last_committed_offset_token") {
                // `v1:<K>:<h>:<position>` (load/src/token.rs): move the position.
                if let Some((stem, _)) = t.rsplit_once(':') {
                    let pos = if a == Answer::CommittedAhead {
                        1u64 << 40
                    } else {
                        0
                    };
                    *t = format!("{stem}:{pos}");
                }
            }
        }
        _ => {}
    }
}
