//! `hostile_file_mode_uploads`: stage uploads (`PUT /snowpipe-emulator/stage/<prefix>/…`).

use std::time::{Duration, SystemTime};

use snowpipe_emulator::aws_chunked;
use snowpipe_hostile::{Case, Suite};

use super::*;
use crate::common::stage::signed_headers_at;

/// What a hostile upload does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Upload {
    /// Declares a length past the caller's share of the stage (up to 2^64 - 1).
    PastCap,
    /// More small files than the caller's share of `--max-stage-files`.
    ManySmall,
    /// A Content-Length or decoded length that disagrees with the bytes.
    LengthDisagrees,
    /// aws-chunked sizes that claim what is not there (2^62, overflowing, not hex).
    ChunkClaim,
    /// Trailers past the caps: too many, too long, or a body past the declared length.
    TrailerPastCap,
    /// A bad, expired or forged signature or security token.
    BadSignature,
    /// Another caller's location, or a path out of one's own.
    OtherLocation,
}

const UPLOADS: [Upload; 7] = [
    Upload::PastCap,
    Upload::ManySmall,
    Upload::LengthDisagrees,
    Upload::ChunkClaim,
    Upload::TrailerPastCap,
    Upload::BadSignature,
    Upload::OtherLocation,
];

/// A file of 3 rows from `first`, as the SDK writes one.
fn small(s: &Server, name: &str, first: u32) -> File {
    file(&s.info, name, &[Part::new(first..first + 3, 5)])
}

/// The request head of a signed PUT of `f` declaring `decoded` bytes, with `content_length`.
fn raw_head(s: &Server, f: &File, decoded: usize, content_length: usize) -> String {
    let url = s.put_url(&f.path);
    let mut head = format!("PUT /{}?x-id=PutObject HTTP/1.1", f.path);
    for (k, v) in &signed_headers(&s.info, &url, decoded) {
        head.push_str(&format!("\r\n{k}: {}", v.to_str().unwrap()));
    }
    head.push_str(&format!("\r\ncontent-length: {content_length}"));
    head
}

fn one(s: &Server, case: &Case<Upload>) {
    let name = format!("h{}.ndjson", case.index);
    let base = 1_000_000 + case.index as u32 * 1000;
    let rng = &mut case.rng.clone();
    let mut f = small(s, &name, base + 500);
    let url = s.put_url(&f.path);
    let what = format!("{:?}", case.class);
    match case.class {
        Upload::PastCap => {
            let share = STAGE_BYTES / 2;
            let claims = [share + 1, 1 << 40, 1 << 62, u64::MAX];
            let declared = claims[rng.below(claims.len() as u64) as usize];
            let h = signed_headers(&s.info, &url, declared as usize);
            let r = s.put(&url, h, aws_chunked(&f.bytes, 8192));
            refused(case, &what, &r, &["EntityTooLarge"], false);
        }
        Upload::ManySmall => {
            many_small(s, case, base, rng);
        }
        Upload::LengthDisagrees => {
            let framed = aws_chunked(&f.bytes, 8192);
            let n = f.bytes.len();
            let codes = ["IncompleteBody", "InvalidChunkSizeError", "BadDigest"];
            match rng.below(3) {
                // The decoded length claims more or fewer bytes than the chunks hold.
                0 => {
                    let lie = if rng.one_in(2) { n + 1 } else { n - 1 };
                    let r = raw_http(&s.url, &raw_head(s, &f, lie, framed.len()), &framed);
                    refused(case, &format!("{what}: decoded {lie}"), &r, &codes, false);
                }
                // Content-Length claims more than is sent: the body never completes (408).
                1 => {
                    let r = raw_http(&s.url, &raw_head(s, &f, n, framed.len() + 4096), &framed);
                    refused(case, &format!("{what}: 4,096 more"), &r, &codes, false);
                }
                // Content-Length claims fewer: the server answers from the bytes it claims
                // and closes with the rest unread, which resets the connection; the client
                // may then see the reset instead of the answer. Either is a refusal (the
                // good upload after shows the server took no harm); a 2xx is not.
                _ => {
                    let r = raw_http(&s.url, &raw_head(s, &f, n, framed.len() / 2), &framed);
                    if !matches!(&r, Err(e) if e.starts_with("no status line")) {
                        refused(case, &format!("{what}: half"), &r, &codes, false);
                    }
                }
            }
        }
        Upload::ChunkClaim => {
            let head = match rng.below(4) {
                0 => "4000000000000000".to_owned(),
                1 => "ffffffffffffffffffffffff".to_owned(),
                2 => "-1".to_owned(),
                _ => format!("{:x}", f.bytes.len() + 1 + rng.below(1 << 20) as usize),
            };
            let mut body = format!("{head}\r\n").into_bytes();
            body.extend_from_slice(&f.bytes);
            body.extend_from_slice(b"\r\n0\r\n\r\n");
            let h = signed_headers(&s.info, &url, f.bytes.len());
            let r = s.put(&url, h, body);
            let codes = ["InvalidChunkSizeError", "IncompleteBody"];
            refused(case, &what, &r, &codes, false);
        }
        Upload::TrailerPastCap => {
            let mut body = aws_chunked(&f.bytes, 8192);
            body.truncate(body.len() - 2);
            match rng.below(3) {
                0 => {
                    for i in 0..rng.range(9, 5000) {
                        body.extend_from_slice(format!("x-amz-meta-{i}:v\r\n").as_bytes());
                    }
                }
                1 => {
                    body.extend_from_slice(b"x-amz-checksum-crc32:");
                    body.resize(body.len() + rng.range(257, 1 << 20) as usize, b'A');
                    body.extend_from_slice(b"\r\n");
                }
                // Bytes past the end the declared length allows.
                _ => body.resize(body.len() + rng.range(8192, 4 << 20) as usize, b'\n'),
            }
            body.extend_from_slice(b"\r\n");
            let h = signed_headers(&s.info, &url, f.bytes.len());
            let codes = [
                "InvalidChunkSizeError",
                "IncompleteBody",
                "MalformedTrailer",
            ];
            match s.put(&url, h, body) {
                // Refused from its length while still being sent: the client sees the close.
                Err(e) if e.contains("error sending request") => {}
                r => refused(case, &what, &r, &codes, false),
            }
        }
        Upload::BadSignature => {
            bad_signature(s, case, &f, &url, rng);
        }
        Upload::OtherLocation => {
            let prefix = s.info.location.trim_end_matches('/');
            let key = match rng.below(3) {
                0 => format!("snowpipe-emulator/stage/another-caller/{name}"),
                1 => format!("{prefix}/../another-caller/{name}"),
                _ => format!("{prefix}x/{name}"),
            };
            let other = s.put_url(&key);
            f.path = key;
            let h = signed_headers(&s.info, &other, f.bytes.len());
            let r = s.put(&other, h, aws_chunked(&f.bytes, 8192));
            refused(case, &what, &r, &["AccessDenied"], false);
        }
    }
}

/// `text` with its last hexadecimal digit changed (a signature or MAC one bit off).
fn flip_last_hex(text: &str) -> String {
    let at = text
        .rfind(|c: char| c.is_ascii_hexdigit())
        .expect("a hex digit");
    let c = text.as_bytes()[at];
    let swapped = if c == b'0' { '1' } else { '0' };
    format!("{}{swapped}{}", &text[..at], &text[at + 1..])
}

#[test]
fn hostile_file_mode_uploads() {
    let s = Server::start();
    let suite = Suite::from_env("file_mode_uploads", UPLOADS.len());
    let mut failures = suite.failures(&UPLOADS, |case| {
        one(&s, &case);
        let base = 1_000_000 + case.index as u32 * 1000;
        let after = format!("the {:?} upload", case.class);
        s.good_file_lands(
            &case,
            &after,
            &format!("g{}.ndjson", case.index),
            base..base + 5,
        );
    });
    // The body's framing costs linear CPU: 3 and 6 MiB in 8 KiB chunks (the smallest the
    // framing allowance takes), both within the caller's share. With the first case run:
    // none when `HOSTILE_ONLY` names other classes (the harness prints that it skipped).
    if let Some(case) = suite.cases(&UPLOADS).into_iter().next() {
        failures.extend(
            snowpipe_hostile::attempt(|| {
                let small = upload_cpu(&s, &case, 3);
                let large = upload_cpu(&s, &case, 6);
                let slack = Duration::from_millis(500);
                snowpipe_hostile::assert_linear(&case, (3, &small), (6, &large), 3.0, slack);
            })
            .err(),
        );
    }
    s.stop(&suite, &UPLOADS, &mut failures);
    suite.finish(failures);
}

/// The server's CPU to take an upload of `mib` MiB in 8 KiB chunks.
fn upload_cpu(
    s: &Server,
    case: &snowpipe_hostile::Case<Upload>,
    mib: usize,
) -> snowpipe_hostile::Outcome {
    let bytes = case.rng.clone().bytes(mib << 20);
    let path = format!("{}lin{mib}.bin", s.info.location);
    let url = s.put_url(&path);
    let h = signed_headers(&s.info, &url, bytes.len());
    let body = aws_chunked(&bytes, 8192);
    let before = s.run.cpu_so_far().expect("/proc");
    let r = s.put(&url, h, body);
    let cpu = s.run.cpu_so_far().expect("/proc") - before;
    if !matches!(r, Ok((200, _))) {
        case.fail(format!("the linear check's upload of {mib} MiB got {r:?}"));
    }
    cpu_only(cpu)
}

/// More small files than the caller's share: the share's are taken, the rest wait
/// `--body-timeout` and get 503 `SlowDown`; registered, every taken file lands once.
fn many_small(s: &Server, case: &Case<Upload>, base: u32, rng: &mut snowpipe_hostile::Rng) {
    // The caller's share of files fills; the next waits --body-timeout, then 503.
    let share = STAGE_FILES / 2;
    let extra = 1 + rng.below(2) as usize;
    let mut files = Vec::new();
    for i in 0..share + extra {
        let first = base + 100 + 3 * i as u32;
        let mut g = small(s, &format!("m{}-{i}.ndjson", case.index), first);
        let r = s.upload(&mut g);
        if i < share {
            if !matches!(r, Ok((200, _))) {
                case.fail(format!("small file {i} of the share got {r:?}"));
            }
            files.push(g);
        } else {
            refused(case, &format!("small file {i}"), &r, &["SlowDown"], true);
        }
    }
    // Registered, every small file lands once and frees the stage.
    let channel = format!("many{}", case.index);
    let ct = crate::hostile_suite::open(&s.url, &channel);
    let frags: Vec<_> = files.iter().flat_map(|g| g.fragments.clone()).collect();
    let r = s.register(&channel, &ct, serde_json::to_vec(&frags).unwrap());
    if !matches!(r, Ok((200, _))) {
        case.fail(format!("the registration of the share's files got {r:?}"));
    }
    let end = base + 100 + 3 * share as u32;
    s.lands_once(case, "the share's small files", base + 100..end);
}

/// A bad, skewed or forged signature or token: 403 naming which.
fn bad_signature(
    s: &Server,
    case: &Case<Upload>,
    f: &File,
    url: &str,
    rng: &mut snowpipe_hostile::Rng,
) {
    let what = format!("{:?}", case.class);
    let mut h = signed_headers(&s.info, url, f.bytes.len());
    let code = match rng.below(5) {
        0 => {
            let auth = h["authorization"].to_str().unwrap().to_owned();
            let flipped = flip_last_hex(&auth);
            h.insert("authorization", flipped.parse().unwrap());
            "SignatureDoesNotMatch"
        }
        1 => {
            let ago = SystemTime::now() - Duration::from_secs(rng.range(16 * 60, 86_400));
            h = signed_headers_at(&s.info, url, f.bytes.len(), ago);
            "RequestTimeTooSkewed"
        }
        2 => {
            let t = h["x-amz-security-token"].to_str().unwrap().to_owned();
            h.insert("x-amz-security-token", flip_last_hex(&t).parse().unwrap());
            "InvalidToken"
        }
        3 => {
            h.remove("x-amz-security-token");
            "AccessDenied"
        }
        _ => {
            let auth = h["authorization"].to_str().unwrap().to_owned();
            let other = auth.replacen(&s.info.aws_key_id, "AKIAFORGEDFORGED0000", 1);
            h.insert("authorization", other.parse().unwrap());
            "InvalidAccessKeyId"
        }
    };
    let r = s.put(url, h, aws_chunked(&f.bytes, 8192));
    refused(case, &format!("{what} ({code})"), &r, &[code], false);
}
