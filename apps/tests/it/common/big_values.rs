//! Large values for the row-size tests (`table_replay_big_rows`, `hostile_mariadb_large`),
//! from a fixed seed: text of a 32-character alphabet (5 bits a character: zstd makes it
//! about 5/8 of its size, so 5 MB compresses into a 4 MB request and 8 MB does not) and
//! control characters (6 bytes each as JSON, `\u0001`: 11 MiB of them are a 69 MB row).

use snowpipe_hostile::Rng;

/// The sizes of the row-size tests: what each becomes (lands, or a dead letter).
pub const SIZES: [(Kind, usize, bool); 5] = [
    (Kind::Text, 1_000, true),
    (Kind::Text, 5_000_000, true),
    (Kind::Text, 8_000_000, false),
    (Kind::Text, 15_000_000, false),
    (Kind::Control, 11 << 20, false),
];

/// What a large value is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `a`–`z`, `0`–`5`.
    Text,
    /// U+0001–U+0007 and U+000E–U+001F: each one `\u00XX` in JSON.
    Control,
}

/// `bytes` characters (one byte each) of `kind`, from `seed`.
pub fn value(kind: Kind, bytes: usize, seed: u64) -> String {
    const TEXT: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz012345";
    const CONTROL: &[u8; 25] = b"\x01\x02\x03\x04\x05\x06\x07\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f";
    let alphabet: &[u8] = match kind {
        Kind::Text => TEXT,
        Kind::Control => CONTROL,
    };
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(bytes);
    while out.len() < bytes {
        let mut r = rng.next_u64();
        for _ in 0..8 {
            if out.len() == bytes {
                break;
            }
            out.push(alphabet[(r & 0xff) as usize % alphabet.len()]);
            r >>= 8;
        }
    }
    String::from_utf8(out).expect("ASCII")
}

/// Sets the server's `max_allowed_packet` to 64 MiB (the connections opened after it take
/// it): the rows carry values of up to 15 MB.
pub async fn allow_large_packets(server_url: &str) {
    use mysql_async::prelude::Queryable as _;
    let mut admin = snowpipe_apps::table_replay::source::connect(&format!("{server_url}/mysql"))
        .await
        .unwrap();
    admin
        .query_drop("SET GLOBAL max_allowed_packet = 67108864")
        .await
        .unwrap();
}
