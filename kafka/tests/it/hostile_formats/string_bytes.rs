//! `hostile_string_bytes_values`: values through Connect's `StringConverter`
//! (`--value-format string`, `--layout record-content`: `RECORD_CONTENT` holds the text) with
//! keys through `ByteArrayConverter` (`--key-converter bytes`: base64 in
//! `RECORD_METADATA.key`; the sink takes no `ByteArrayConverter` values, the connector would
//! write them as base64 text). Each hostile value carries a hostile key.

use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::{Case, Rng};

use super::wire::letters;
use super::{between, run_surface, Linear, Msg, Surface, MAX_MESSAGE};

fn good(id: i64) -> Vec<u8> {
    format!("good {id}").into_bytes()
}

/// `n` bytes that each need an escape in the row's JSON: quotes, backslashes, control
/// characters.
fn escapes(n: usize) -> Vec<u8> {
    b"\"\\\x01\x1f\n".iter().copied().cycle().take(n).collect()
}

/// Every hostile value of `class`, sizes from `rng`, each with a key of the class.
fn values(class: Class, rng: &mut Rng, id: i64) -> Vec<Msg> {
    let bad = Msg::bad;
    let key = |k: &[u8]| Some(k.to_vec());
    match class {
        Class::Size => vec![
            bad(letters(
                rng.range(100_000, (MAX_MESSAGE - 50_000) as u64) as usize,
                rng,
            ))
            .with_key(key(&letters(rng.range(1_000, 50_000) as usize, rng))),
            bad(escapes(rng.range(10_000, 400_000) as usize)),
        ],
        Class::Depth => {
            let mut v = Vec::new();
            gen::nested_json(&mut v, rng.range(1_000, 100_000) as usize, rng);
            vec![bad(v).with_key(key(b"[[[[[[[["))]
        }
        Class::Count => {
            let mut keys = Vec::new();
            gen::many_keys_object(&mut keys, rng.range(1_000, 50_000) as usize);
            let lines = vec![b'\n'; rng.range(1_000, 400_000) as usize];
            vec![bad(keys), bad(lines).with_key(key(&[0; 64]))]
        }
        Class::Number => gen::EDGE_NUMBERS
            .iter()
            .map(|n| bad(n.as_bytes().to_vec()).with_key(key(n.as_bytes())))
            .chain([bad(i64::MIN.to_string().into_bytes())])
            .collect(),
        Class::Encoding => {
            let invalid = [b"x".as_slice(), gen::invalid_utf8(rng), b"y"].concat();
            let ctl = [gen::BOM, gen::control_chars(rng), b"\0\"\\"].concat();
            vec![
                bad(invalid.clone()).with_key(key(&invalid)),
                bad(ctl.clone()).with_key(key(&ctl)),
                bad(gen::BOM.to_vec()).with_key(key(gen::invalid_utf8(rng))),
            ]
        }
        Class::Claim => vec![
            // The Schema Registry wire format's header, a JSON text never closed, an escape
            // as text.
            bad(vec![0, 0, 0, 0, 1, 2, 0x80]),
            bad(br#"{"a":"never closed"#.to_vec()),
            bad(br"\u0000\ud800".to_vec()).with_key(key(&[0xFF; 8])),
        ],
        Class::Reserved => vec![
            bad(br#"{"RECORD_METADATA":{"topic":"forged","partition":7,"offset":0}}"#.to_vec()),
            bad(Vec::new()).with_key(key(b"")),
            bad(format!("no key {id}").into_bytes()).with_key(None),
            Msg::tombstone(),
            Msg::tombstone().with_key(None),
        ],
    }
}

/// Text values and byte keys of every class between good ones; the linear check on text
/// that is all escapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_string_bytes_values() {
    let surface = Surface {
        name: "string_bytes_values",
        topic: "hostile.string",
        table: "CONNECTOR_ROWS",
        schemas: Default::default(),
        args: &[
            "--value-format",
            "string",
            "--layout",
            "record-content",
            "--key-converter",
            "bytes",
        ],
    };
    let linear = Linear {
        sizes: [2_000_000, 4_000_000],
        per_message: 500_000,
        value: escapes,
    };
    let messages = |case: &mut Case<Class>| between(case, good, values);
    run_surface(surface, messages, linear).await;
}
