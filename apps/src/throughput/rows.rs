//! The harness's rows: ski-resort lift tickets (≈330 bytes of NDJSON each), generated from a
//! seed. The criterion bench `benches/end_to_end.rs` streams the same rows.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Ticket {
    pub(crate) txid: String,
    pub(crate) rfid: String,
    pub(crate) resort: String,
    pub(crate) purchase_time: String,
    pub(crate) expiration_time: String,
    pub(crate) days: u32,
    pub(crate) name: String,
    pub(crate) address: Option<Address>,
    pub(crate) phone: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) emergency_contact: Contact,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Address {
    pub(crate) street_address: String,
    pub(crate) city: String,
    pub(crate) state: String,
    pub(crate) postalcode: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Contact {
    pub(crate) name: String,
    pub(crate) phone: String,
}

pub const RESORTS: &[&str] = &[
    "Vail",
    "Beaver Creek",
    "Breckenridge",
    "Keystone",
    "Crested Butte",
    "Park City",
    "Heavenly",
    "Northstar",
    "Kirkwood",
    "Whistler Blackcomb",
];
pub const FIRST: &[&str] = &[
    "Ana", "Bjorn", "Chen", "Dara", "Emil", "Farah", "Gus", "Hana",
];
pub const LAST: &[&str] = &["Olsen", "Garcia", "Nakamura", "Smith", "Kowalski", "Dubois"];
pub const CITIES: &[(&str, &str)] = &[
    ("Denver", "CO"),
    ("Salt Lake City", "UT"),
    ("Reno", "NV"),
    ("Boulder", "CO"),
];

pub fn phone(rng: &mut impl Rng) -> String {
    format!(
        "{:03}-{:03}-{:04}",
        rng.gen_range(200..999),
        rng.gen_range(200..999),
        rng.gen_range(0..9999)
    )
}

pub fn ticket(rng: &mut impl Rng) -> Ticket {
    let name = format!(
        "{} {}",
        FIRST[rng.gen_range(0..FIRST.len())],
        LAST[rng.gen_range(0..LAST.len())]
    );
    let (city, state) = CITIES[rng.gen_range(0..CITIES.len())];
    let day = rng.gen_range(1..=28);
    Ticket {
        txid: uuid::Builder::from_random_bytes(rng.gen())
            .into_uuid()
            .to_string(),
        rfid: format!("0x{:012x}", rng.gen::<u64>() & 0xffff_ffff_ffff),
        resort: RESORTS[rng.gen_range(0..RESORTS.len())].to_owned(),
        purchase_time: format!(
            "2026-01-{day:02}T{:02}:{:02}:{:02}.{:06}",
            rng.gen_range(6..20),
            rng.gen_range(0..60),
            rng.gen_range(0..60),
            rng.gen_range(0..1_000_000)
        ),
        expiration_time: format!("2026-03-{day:02}"),
        days: rng.gen_range(1..8),
        name,
        address: rng.gen_bool(0.3).then(|| Address {
            street_address: format!("{} Main St", rng.gen_range(1..9999)),
            city: city.to_owned(),
            state: state.to_owned(),
            postalcode: format!("{:05}", rng.gen_range(10000..99999)),
        }),
        phone: rng.gen_bool(0.7).then(|| phone(rng)),
        email: None,
        emergency_contact: Contact {
            name: format!(
                "{} {}",
                FIRST[rng.gen_range(0..FIRST.len())],
                LAST[rng.gen_range(0..LAST.len())]
            ),
            phone: phone(rng),
        },
    }
}

pub fn generate(n: usize, seed: u64) -> Vec<Ticket> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| ticket(&mut rng)).collect()
}
