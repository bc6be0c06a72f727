//! The hostile answers of the SQL API (`/api/v2/statements`): each writes to the client's
//! connection what a hostile or broken server would, some instead of asking the emulator, some
//! by rewriting the emulator's own answer.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use serde_json::{json, Value};
use snowpipe_hostile::gen;
use snowpipe_hostile::http::{
    endless_chunked, forward, gzip_bomb, huge_length, invalid_utf8_in_first_string, respond,
    Request,
};
use snowpipe_hostile::Rng;

/// What the hostile SQL API answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// `Transfer-Encoding: chunked`, chunks without end.
    EndlessChunked,
    /// `Content-Length: 2^62`, then bytes until the client stops reading.
    HugeLength,
    /// `Content-Encoding: gzip`: 1.7 MB that inflate to 256 MiB.
    GzipBomb,
    /// The first answer claims two partitions; the second is a gzip bomb.
    GzipBombPartition,
    /// `resultSetMetaData` claiming 10^12 rows in a partition of 10^15 bytes.
    RowClaims,
    /// `partitionInfo` of 10^6 partitions.
    ManyPartitions,
    /// 10^5 columns, and a row of 10^5 values.
    ManyColumns,
    /// The emulator's rows, each cut to no values.
    ShortRows,
    /// The emulator's rows, each with three values more than the columns.
    LongRows,
    /// The emulator's answer with every value a number or an object instead of text.
    WrongTypes,
    /// `data` nested 10,000 deep.
    DeepData,
    /// HTTP 202 (`333334`, still running) with a statement handle, for ever.
    AsyncForever,
    /// 429 with `Retry-After: 10^18`.
    RetryAfterHuge,
    /// The emulator's answer with invalid UTF-8 inside its first string.
    InvalidUtf8,
    /// `data` an object, not an array.
    DataNotArray,
    /// The emulator's rows repeated to 200 MiB (under the SDK's default 256 MiB a partition).
    ManyRows,
    /// Counts that disagree: more distinct offsets than rows in a partition.
    CountsDisagree,
}

impl Answer {
    pub(super) const ALL: [Answer; 17] = [
        Answer::EndlessChunked,
        Answer::HugeLength,
        Answer::GzipBomb,
        Answer::GzipBombPartition,
        Answer::RowClaims,
        Answer::ManyPartitions,
        Answer::ManyColumns,
        Answer::ShortRows,
        Answer::LongRows,
        Answer::WrongTypes,
        Answer::DeepData,
        Answer::AsyncForever,
        Answer::RetryAfterHuge,
        Answer::InvalidUtf8,
        Answer::DataNotArray,
        Answer::ManyRows,
        Answer::CountsDisagree,
    ];
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json";

/// Whether `req` is the SQL API's (a statement, its status or a partition).
pub(super) fn is_sql(req: &Request) -> bool {
    req.path.starts_with("/api/v2/statements")
}

/// Answers `req` (a SQL API request) as `a` says; `upstream` is the emulator.
///
/// # Errors
/// When the client is gone (expected: it stops reading what is past its caps).
pub(super) fn answer(
    a: Answer,
    req: &Request,
    conn: &mut TcpStream,
    upstream: SocketAddr,
) -> std::io::Result<()> {
    match a {
        Answer::EndlessChunked => endless_chunked(conn, OK),
        Answer::HugeLength => huge_length(conn, OK),
        Answer::GzipBomb => conn.write_all(&respond(OK, gzip_bomb(), &["Content-Encoding: gzip"])),
        Answer::GzipBombPartition if req.path.contains("partition=") => {
            conn.write_all(&respond(OK, gzip_bomb(), &["Content-Encoding: gzip"]))
        }
        Answer::DeepData => {
            // In `data` (typed: refused at the first level too deep) and in a field the client
            // skips (where serde_json's recursion limit is the one bound).
            let mut body = br#"{"statementHandle":"h","resultSetMetaData":{"rowType":[{"name":"T","type":"text"}],"partitionInfo":[{}],"stats":"#.to_vec();
            gen::nested_json(&mut body, 10_000, &mut Rng::new(85));
            body.extend_from_slice(b"},\"data\":");
            body.extend(std::iter::repeat_n(b'[', 10_000));
            body.extend(std::iter::repeat_n(b']', 10_000));
            body.push(b'}');
            conn.write_all(&respond(OK, &body, &[]))
        }
        Answer::AsyncForever => {
            let head = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json";
            let body = br#"{"code":"333334","message":"Asynchronous execution in progress.","statementHandle":"01b2c3d4-hostile","statementStatusUrl":"/api/v2/statements/01b2c3d4-hostile"}"#;
            conn.write_all(&respond(head, body, &[]))
        }
        Answer::RetryAfterHuge => {
            let head = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json";
            conn.write_all(&respond(
                head,
                br#"{"message":"busy"}"#,
                &["Retry-After: 1000000000000000000"],
            ))
        }
        _ => {
            let (head, body) = forward(req, upstream)?;
            let body = rewrite(a, &body);
            conn.write_all(&respond(&head, &body, &[]))
        }
    }
}

/// The emulator's answer `body` rewritten as `a` says.
fn rewrite(a: Answer, body: &[u8]) -> Vec<u8> {
    if a == Answer::InvalidUtf8 {
        return invalid_utf8_in_first_string(body);
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let columns = v["resultSetMetaData"]["rowType"]
        .as_array()
        .map_or(1, Vec::len);
    let meta = &mut v["resultSetMetaData"];
    match a {
        Answer::GzipBombPartition => {
            meta["partitionInfo"] = json!([{"rowCount": 1}, {"rowCount": 1}]);
        }
        Answer::RowClaims => {
            meta["numRows"] = json!(1_000_000_000_000u64);
            meta["partitionInfo"] = json!([{"rowCount": 1_000_000_000_000u64, "uncompressedSize": 1_000_000_000_000_000u64}]);
        }
        Answer::ManyPartitions => {
            meta["partitionInfo"] = Value::Array(vec![json!({}); 1_000_000]);
        }
        Answer::ManyColumns => {
            meta["rowType"] = Value::Array(vec![json!({"name": "C", "type": "fixed"}); 100_000]);
            v["data"] = json!([vec!["1"; 100_000]]);
        }
        Answer::ShortRows => map_rows(&mut v, |_| Value::Array(Vec::new())),
        Answer::LongRows => map_rows(&mut v, |mut r| {
            if let Some(a) = r.as_array_mut() {
                a.extend([json!("1"), json!("2"), json!(null)]);
            }
            r
        }),
        Answer::WrongTypes => map_rows(&mut v, |r| {
            Value::Array(
                r.as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, _)| {
                        if i % 2 == 0 {
                            json!(7)
                        } else {
                            json!({"a": 1})
                        }
                    })
                    .collect(),
            )
        }),
        Answer::DataNotArray => v["data"] = json!({"0": ["1"]}),
        Answer::CountsDisagree => map_rows(&mut v, |mut r| {
            if let Some(a) = r.as_array_mut().filter(|a| a.len() == 8) {
                a[2] = json!("1");
                a[3] = json!("5");
            }
            r
        }),
        Answer::ManyRows => {
            let row = vec![Value::String("12345".into()); columns];
            let row = serde_json::to_string(&row).unwrap();
            let n = (200usize << 20) / (row.len() + 1);
            let mut data = String::with_capacity(n * (row.len() + 1) + 2);
            data.push('[');
            for i in 0..n {
                if i > 0 {
                    data.push(',');
                }
                data.push_str(&row);
            }
            data.push(']');
            v["data"] = json!("DATA");
            let text = serde_json::to_string(&v).unwrap();
            return text.replacen("\"DATA\"", &data, 1).into_bytes();
        }
        _ => {}
    }
    serde_json::to_vec(&v).unwrap()
}

fn map_rows(v: &mut Value, f: impl Fn(Value) -> Value) {
    if let Some(rows) = v.get_mut("data").and_then(Value::as_array_mut) {
        for r in rows.iter_mut() {
            *r = f(std::mem::take(r));
        }
        if rows.is_empty() {
            rows.push(f(json!(["1"])));
        }
    }
}
