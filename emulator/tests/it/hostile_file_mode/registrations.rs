//! `hostile_file_registrations`: `POST …/channels/{channel}/filebuffer` naming the stage's
//! files, and files that are not what their registration claims.

use aes::cipher::{KeyIvInit, StreamCipher};
use serde_json::{json, Value};
use snowpipe_hostile::{assert_linear, attempt, gen, Case, Outcome, Rng, Suite};

use super::*;
use crate::common::stage::Aes256Ctr;

/// What a hostile registration does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reg {
    /// 1,025 fragments (one past the limit).
    TooMany,
    /// The same range twice, or ranges that overlap.
    RangeTwice,
    /// A range past the file's end, or at 2^62.
    PastFile,
    /// A file the stage does not hold, or another ETag or length.
    UnknownFile,
    /// Deep JSON, a body past 1 MiB, a BOM, invalid UTF-8.
    BadJson,
    /// A file that is not the format claimed: corrupt zstd, a BDEC-like or Parquet-like blob
    /// with length claims of 2^62, a zstd frame claiming 2^62 bytes, a zstd bomb.
    NotTheFormat,
    /// Numbers at the edges in the numeric fields (2^64, -1, 1e308, u64::MAX sums).
    EdgeNumbers,
    /// Another key id, diversifier, encryption version or IV.
    WrongKey,
}

const REGS: [Reg; 8] = [
    Reg::TooMany,
    Reg::RangeTwice,
    Reg::PastFile,
    Reg::UnknownFile,
    Reg::BadJson,
    Reg::NotTheFormat,
    Reg::EdgeNumbers,
    Reg::WrongKey,
];

const INVALID: &str = "ERR_INVALID_FILE_FRAGMENTS";

/// `f` with its bytes replaced by `plain` encrypted under the pipe key and IV `iv`, as one
/// fragment claiming `rows` rows.
fn with_content(info: &StageInfo, mut f: File, plain: &[u8], iv: [u8; 16]) -> File {
    let mut data = plain.to_vec();
    Aes256Ctr::new(&info.key.into(), &iv.into()).apply_keystream(&mut data);
    f.fragments.truncate(1);
    let frag = &mut f.fragments[0];
    frag["fragment_start_byte_offset"] = json!(0);
    frag["fragment_length_bytes"] = json!(data.len());
    frag["file_length_bytes"] = json!(data.len());
    frag["iv_base64"] = json!(base64_of(&iv));
    f.bytes = data;
    f
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A plaintext that is not zstd NDJSON, and what it is.
fn not_the_format(rng: &mut Rng) -> (Vec<u8>, &'static str) {
    match rng.below(5) {
        0 => {
            let mut z = zstd::encode_all(&b"{\"ID\":1}\n".repeat(100)[..], 3).unwrap();
            gen::corrupt_tail(&mut z, rng);
            (z, "corrupt zstd")
        }
        1 => {
            let mut b = b"BDEC\x01".to_vec();
            b.extend_from_slice(&(1u64 << 62).to_be_bytes());
            b.extend_from_slice(&rng.bytes(64));
            (b, "BDEC-like, a length of 2^62")
        }
        2 => {
            let mut b = b"PAR1".to_vec();
            b.extend_from_slice(&rng.bytes(64));
            b.extend_from_slice(&u32::MAX.to_le_bytes());
            b.extend_from_slice(b"PAR1");
            (b, "Parquet-like, a footer of 2^32 - 1")
        }
        3 => {
            // A zstd frame whose header claims 2^62 bytes of content, holding 3.
            let mut b = vec![0x28, 0xB5, 0x2F, 0xFD, 0xE0];
            b.extend_from_slice(&(1u64 << 62).to_le_bytes());
            b.extend_from_slice(&[3 << 3 | 1, 0, 0]);
            b.extend_from_slice(b"{}\n");
            (b, "a zstd frame claiming 2^62 bytes")
        }
        _ => {
            let plain = vec![b' '; rng.range(300, 600) as usize * MIB as usize];
            (
                zstd::encode_all(plain.as_slice(), 19).unwrap(),
                "a zstd bomb",
            )
        }
    }
}

/// The bad registration body of `case` around the good file `g` (its fragments unsent):
/// the body and the error codes that may name its refusal.
fn bad_body(s: &Server, case: &Case<Reg>, g: &File, rng: &mut Rng) -> (Vec<u8>, Vec<&'static str>) {
    let frag = |i: usize| g.fragments[i].clone();
    let len = g.bytes.len() as u64;
    let to_vec = |v: &Value| serde_json::to_vec(v).unwrap();
    let invalid = vec![INVALID];
    match case.class {
        Reg::TooMany => (to_vec(&json!(vec![frag(0); 1025])), invalid),
        Reg::RangeTwice => {
            let mut second = frag(1);
            if rng.one_in(2) {
                second = frag(0);
            } else {
                let start = second["fragment_start_byte_offset"].as_u64().unwrap() - 1;
                second["fragment_start_byte_offset"] = json!(start);
            }
            (to_vec(&json!([frag(0), second])), invalid)
        }
        Reg::PastFile => {
            let mut f = frag(1);
            let (start, n) = match rng.below(3) {
                0 => (len - 1, 10),
                1 => (1u64 << 62, 10),
                _ => (0, len + 1),
            };
            f["fragment_start_byte_offset"] = json!(start);
            f["fragment_length_bytes"] = json!(n);
            (to_vec(&json!([frag(0), f])), invalid)
        }
        Reg::UnknownFile => {
            let mut f = frag(0);
            match rng.below(3) {
                0 => {
                    f["file_path"] =
                        json!(format!("{}nothing{}.ndjson", s.info.location, case.index))
                }
                1 => f["file_etag"] = json!("0".repeat(32)),
                _ => f["file_length_bytes"] = json!(len + 1),
            }
            (
                to_vec(&json!([f])),
                vec![INVALID, "ERR_STAGE_FILE_NOT_FOUND"],
            )
        }
        Reg::BadJson => match rng.below(4) {
            0 => {
                let mut b = Vec::new();
                gen::nested_json(&mut b, rng.range(200, 200_000) as usize, rng);
                (b, invalid)
            }
            1 => {
                let mut f = frag(0);
                f["file_path"] = json!("x".repeat(rng.range(1 << 20, 3 << 20) as usize));
                (to_vec(&json!([f])), vec!["ERR_PAYLOAD_TOO_LARGE"])
            }
            2 => {
                let mut b = gen::BOM.to_vec();
                b.extend_from_slice(&to_vec(&json!([frag(0)])));
                (b, invalid)
            }
            _ => {
                let mut b = br#"[{"file_path":""#.to_vec();
                b.extend_from_slice(gen::invalid_utf8(rng));
                b.extend_from_slice(gen::control_chars(rng));
                b.extend_from_slice(br#""}]"#);
                (b, invalid)
            }
        },
        Reg::NotTheFormat => unreachable!("built with its own file"),
        Reg::EdgeNumbers => {
            let mut f = frag(1);
            let field = *rng.pick(&[
                "fragment_start_byte_offset",
                "fragment_length_bytes",
                "file_length_bytes",
                "fragment_row_count",
            ]);
            let edge = *rng.pick(&[
                "18446744073709551615",
                "18446744073709551616",
                "-1",
                "1e308",
                "0.5",
                "0",
            ]);
            f[field] = json!(0);
            let text = serde_json::to_string(&json!([frag(0), f])).unwrap();
            let text = text.replacen(&format!("\"{field}\":0"), &format!("\"{field}\":{edge}"), 1);
            (text.into_bytes(), invalid)
        }
        Reg::WrongKey => {
            let mut f = frag(0);
            match rng.below(4) {
                0 => f["master_key_id"] = json!("12345"),
                1 => f["diversifier"] = json!("another"),
                2 => f["encryption_version"] = json!("AES-GCM-256.9"),
                _ => f["iv_base64"] = json!(base64_of(&rng.bytes(15))),
            }
            (to_vec(&json!([f])), invalid)
        }
    }
}

fn one(s: &Server, case: &Case<Reg>) {
    let rng = &mut case.rng.clone();
    let base = 1_000_000 + case.index as u32 * 1000;
    let ids = base..base + 5;
    let mut g = file(
        &s.info,
        &format!("g{}.ndjson", case.index),
        &[
            Part::new(base..base + 3, 1),
            Part::new(base + 3..base + 5, 2),
        ],
    );
    if !matches!(s.upload(&mut g), Ok((200, _))) {
        case.fail("the good file's upload was refused");
    }
    let channel = format!("reg{}", case.index);
    let ct = crate::hostile_suite::open(&s.url, &channel);
    let (body, codes, what) = if case.class == Reg::NotTheFormat {
        let (plain, what) = not_the_format(rng);
        let b = file(
            &s.info,
            &format!("b{}.ndjson", case.index),
            &[Part::new(0..1, 3)],
        );
        let mut b = with_content(&s.info, b, &plain, [3; 16]);
        if rng.one_in(3) {
            b.fragments[0]["content_type"] = json!("application/x-parquet");
        }
        if !matches!(s.upload(&mut b), Ok((200, _))) {
            case.fail(format!("the upload of {what} was refused"));
        }
        // The good file's first fragment in front: refused whole, it must not land.
        let frags = json!([g.fragments[0], b.fragments[0]]);
        let codes = vec![INVALID, "ERR_PAYLOAD_TOO_LARGE"];
        (serde_json::to_vec(&frags).unwrap(), codes, what.to_owned())
    } else {
        let (body, codes) = bad_body(s, case, &g, rng);
        (body, codes, format!("{:?} registration", case.class))
    };
    let what = format!("{what} ({} bytes)", body.len());
    let r = s.register(&channel, &ct, body);
    refused(case, &what, &r, &codes, false);
    // The good registration after it, on the same channel: every row once.
    let r = s.register(&channel, &ct, serde_json::to_vec(&g.fragments).unwrap());
    if !matches!(r, Ok((200, _))) {
        case.fail(format!("after the {what}, the good registration got {r:?}"));
    }
    s.lands_once(case, &format!("after the {what}, the good file"), ids);
}

/// The server's CPU to register and land a file of `fragments` fragments of 10 rows.
fn registration_cpu<C: std::fmt::Debug>(s: &Server, case: &Case<C>, fragments: u32) -> Outcome {
    let base = 50_000_000 + fragments * 100;
    let parts: Vec<Part> = (0..fragments)
        .map(|i| Part::new(base + 10 * i..base + 10 * i + 10, i as u8))
        .collect();
    let mut f = file(&s.info, &format!("lin{fragments}.ndjson"), &parts);
    if !matches!(s.upload(&mut f), Ok((200, _))) {
        case.fail("the linear check's upload was refused");
    }
    let channel = format!("lin{fragments}");
    let ct = crate::hostile_suite::open(&s.url, &channel);
    let before = s.run.cpu_so_far().expect("/proc");
    let r = s.register(&channel, &ct, serde_json::to_vec(&f.fragments).unwrap());
    if !matches!(r, Ok((200, _))) {
        case.fail(format!("the linear check's registration got {r:?}"));
    }
    s.lands_once(case, "the linear check's file", base..base + 10 * fragments);
    let cpu = s.run.cpu_so_far().expect("/proc") - before;
    cpu_only(cpu)
}

#[test]
fn hostile_file_registrations() {
    let s = Server::start();
    let suite = Suite::from_env("file_registrations", REGS.len());
    let mut failures = suite.failures(&REGS, |case| one(&s, &case));
    // Fragments cost linear CPU: 512 and 1,024 of them (the most one registration names),
    // with the first case run: none when `HOSTILE_ONLY` names other classes (the harness
    // prints that it skipped).
    if let Some(case) = suite.cases(&REGS).into_iter().next() {
        failures.extend(
            attempt(|| {
                let small = registration_cpu(&s, &case, 512);
                let large = registration_cpu(&s, &case, 1024);
                assert_linear(
                    &case,
                    (512, &small),
                    (1024, &large),
                    3.0,
                    Duration::from_millis(500),
                );
            })
            .err(),
        );
    }
    s.stop(&suite, &REGS, &mut failures);
    suite.finish(failures);
}
