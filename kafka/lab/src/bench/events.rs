//! The messages the bench produces: realistic clickstream events (the default) or the padded
//! objects of earlier runs (`--events padded`, to compare with them).
//!
//! A clickstream event is what a web shop's tracker sends: the table's three columns (`id`,
//! `kind`, `amount`) first, then a timestamp, an event id, and nested objects and arrays of
//! the session, the user, the page (URLs with query strings, a title with some unicode), the
//! device (a browser's user agent, the screen), the place, timings (floats), flags
//! (booleans), and the cart's items. Each is a pure function of the seed and the message's
//! id, so two runs with the same `--seed` produce the same bytes. Its sections come in that
//! order, each added while the event stays within the size asked for, then items until the
//! next would pass it: 1024 gives about 1 KB with everything and an item or two, 100 the
//! columns and the time, 4096 the same event with a longer cart.

use std::fmt::Write as _;

/// Which messages the bench produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Events {
    /// Clickstream events: nested objects, arrays, URLs, user agents, numbers (the module
    /// docs).
    Realistic,
    /// `{"id":…,"kind":"view","amount":…,"pad":"xxx…"}`: earlier runs' messages.
    Padded,
}

/// Message `id` of `events`, about `size` bytes, from `seed`.
pub fn message(events: Events, seed: u64, id: u64, size: usize) -> String {
    match events {
        Events::Realistic => clickstream(seed, id, size),
        Events::Padded => padded(id, size),
    }
}

/// A padded message: a JSON object of about `size` bytes, most of it `x`.
fn padded(id: u64, size: usize) -> String {
    let pad = "x".repeat(size.saturating_sub(60));
    format!(
        r#"{{"id":{id},"kind":"view","amount":{},"pad":"{pad}"}}"#,
        id % 1000
    )
}

/// SplitMix64: a well-mixed 64-bit value of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The deterministic draws of one event.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }

    /// A value below `n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[usize::try_from(self.below(of.len() as u64)).unwrap_or(0)]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// `n` lower-case hex digits.
    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(n);
        s
    }
}

const KINDS: &[&str] = &[
    "view",
    "click",
    "add_to_cart",
    "search",
    "checkout",
    "scroll",
];
const PATHS: &[&str] = &[
    "/products/ski-boots",
    "/products/helmets/alpine-pro",
    "/category/outerwear/jackets",
    "/search",
    "/cart",
    "/blog/how-to-wax-your-skis",
    "/checkout/payment",
];
const SOURCES: &[&str] = &["newsletter", "google", "instagram", "partner_42", "direct"];
const REFERRERS: &[&str] = &[
    "https://www.google.com/search?q=ski+boots+sale&hl=de",
    "https://www.bing.com/search?q=alpine+helmet+review",
    "https://l.instagram.com/?u=https%3A%2F%2Fshop.example.com%2F&e=AT0",
    "",
];
const TITLES: &[&str] = &[
    "Skischuhe – Größe 42 | Example Shop",
    "Casque alpin « Pro » – Été 2026",
    "Jackets & Parkas — Winter Sale",
    "スキー用品 | Example Shop",
    "Checkout · Payment",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like \
     Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/130.0.6723.102 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) \
     Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
];
const PLACES: &[(&str, &str, &str, f64, f64)] = &[
    ("DE", "München", "de-DE", 48.137, 11.575),
    ("AT", "Innsbruck", "de-AT", 47.269, 11.404),
    ("FR", "Chamonix-Mont-Blanc", "fr-FR", 45.924, 6.869),
    ("CH", "Zürich", "de-CH", 47.377, 8.541),
    ("JP", "札幌市", "ja-JP", 43.062, 141.354),
    ("US", "Denver", "en-US", 39.739, -104.990),
];
const SEGMENTS: &[&str] = &[
    "returning",
    "mobile",
    "high_value",
    "newsletter",
    "sale_hunter",
];

/// A clickstream event of about `size` bytes (the module docs).
fn clickstream(seed: u64, id: u64, size: usize) -> String {
    let mut d = Draws(mix(seed ^ mix(id)));
    let kind = d.pick(KINDS);
    let mut out = format!(
        r#"{{"id":{id},"kind":"{kind}","amount":{}"#,
        d.below(100_000)
    );
    let ts = |d: &mut Draws| {
        let ms = 1_764_180_000_000 + id * 7 + d.below(1000);
        format!(r#","ts":"{}""#, timestamp(ms))
    };
    let event_id = |d: &mut Draws| {
        let (a, b, c, e) = (d.hex(8), d.hex(4), d.hex(3), d.hex(12));
        format!(r#","event_id":"{a}-{b}-4{c}-{e}""#)
    };
    let sections: [&dyn Fn(&mut Draws) -> String; 8] = [
        &ts, &event_id, &session, &user, &page, &device, &geo, &metrics,
    ];
    for section in sections {
        let part = section(&mut d);
        if out.len() + part.len() + 2 > size {
            break;
        }
        out.push_str(&part);
    }
    items(&mut d, &mut out, size);
    out.push('}');
    out
}

/// `ms` since the epoch as RFC 3339 in UTC, with milliseconds (days as 30-day months: a
/// plausible time, not a calendar).
fn timestamp(ms: u64) -> String {
    let s = ms / 1000;
    let days = s / 86_400;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1970 + days / 365,
        (days % 365) / 31 % 12 + 1,
        days % 28 + 1,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

fn session(d: &mut Draws) -> String {
    format!(
        r#","session":{{"id":"{}","started_at":{},"page_views":{},"new":{}}}"#,
        d.hex(16),
        1_764_180_000 + d.below(86_400),
        1 + d.below(40),
        d.chance(30)
    )
}

fn user(d: &mut Draws) -> String {
    let anonymous = d.chance(40);
    let id = if anonymous {
        "null".to_owned()
    } else {
        format!("\"u_{}\"", d.below(5_000_000))
    };
    let segments: Vec<String> = (0..d.below(4))
        .map(|_| format!("\"{}\"", d.pick(SEGMENTS)))
        .collect();
    format!(
        r#","user":{{"id":{id},"anonymous":{anonymous},"segments":[{}]}}"#,
        segments.join(",")
    )
}

fn page(d: &mut Draws) -> String {
    let path = d.pick(PATHS);
    format!(
        r#","page":{{"url":"https://shop.example.com{path}?color={}&size={}&utm_source={}&utm_campaign=winter_{}","path":"{path}","referrer":"{}","title":"{}"}}"#,
        d.pick(&["blue", "red", "black", "white"]),
        36 + d.below(12),
        d.pick(SOURCES),
        d.below(100),
        d.pick(REFERRERS),
        d.pick(TITLES)
    )
}

fn device(d: &mut Draws) -> String {
    let agent = d.below(AGENTS.len() as u64);
    let mobile = agent == 1 || agent == 2;
    let (w, h) = if mobile { (1080, 2400) } else { (1920, 1080) };
    format!(
        r#","device":{{"user_agent":"{}","mobile":{mobile},"screen":{{"width":{w},"height":{h},"dpr":{}}},"languages":["{}","en"]}}"#,
        AGENTS[usize::try_from(agent).unwrap_or(0)],
        if mobile { 2.75 } else { 1.0 },
        d.pick(&["de", "fr", "ja", "en-GB"])
    )
}

fn geo(d: &mut Draws) -> String {
    let (country, city, locale, lat, lon) =
        PLACES[usize::try_from(d.below(PLACES.len() as u64)).unwrap_or(0)];
    format!(
        r#","geo":{{"country":"{country}","city":"{city}","locale":"{locale}","lat":{lat:.3},"lon":{lon:.3},"ip":"203.0.{}.{}"}}"#,
        d.below(256),
        d.below(256)
    )
}

fn metrics(d: &mut Draws) -> String {
    let scroll = d.below(1000) as f64 / 1000.0;
    format!(
        r#","metrics":{{"load_ms":{},"ttfb_ms":{},"scroll_depth":{scroll:.3},"consent":{},"bot":{}}}"#,
        80 + d.below(3000),
        10 + d.below(400),
        d.chance(80),
        d.chance(2)
    )
}

/// The cart: items while the next fits in `size` (with the closing brackets).
fn items(d: &mut Draws, out: &mut String, size: usize) {
    let mut first = true;
    loop {
        let price = (499 + d.below(50_000)) as f64 / 100.0;
        let item = format!(
            r#"{}{{"sku":"SKU-{:06}","price":{price:.2},"qty":{},"in_stock":{}}}"#,
            if first { r#","items":["# } else { "," },
            d.below(1_000_000),
            1 + d.below(3),
            d.chance(90)
        );
        if out.len() + item.len() + 2 > size {
            break;
        }
        out.push_str(&item);
        first = false;
    }
    if !first {
        out.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events are valid JSON with the table's columns, the same for a seed and an id, about
    /// the size asked for, and nested at the sizes that have room for it.
    #[test]
    fn clickstream_events_are_json_of_about_the_size_asked() {
        for size in [100, 512, 1024, 4096] {
            let mut total = 0;
            for id in 0..500 {
                let m = message(Events::Realistic, 7, id, size);
                assert_eq!(m, message(Events::Realistic, 7, id, size));
                let v: serde_json::Value = serde_json::from_str(&m).unwrap();
                assert_eq!(v["id"], id);
                assert!(v["kind"].is_string() && v["amount"].is_u64(), "{m}");
                assert!(m.len() <= size, "{} > {size}: {m}", m.len());
                if size >= 1024 {
                    assert!(v["device"]["user_agent"].is_string(), "{m}");
                    assert!(v["page"]["url"].is_string() && v["geo"].is_object(), "{m}");
                }
                if size >= 2048 {
                    assert!(v["items"].as_array().is_some_and(|a| a.len() > 5), "{m}");
                }
                total += m.len();
            }
            let mean = total / 500;
            assert!(mean * 10 >= size * 7, "{size}: mean {mean}");
            if size >= 1024 {
                assert!(mean * 100 >= size * 90, "{size}: mean {mean}");
            }
        }
        assert_ne!(
            message(Events::Realistic, 1, 5, 1024),
            message(Events::Realistic, 2, 5, 1024)
        );
        let padded = message(Events::Padded, 0, 3, 1024);
        assert!(serde_json::from_str::<serde_json::Value>(&padded).is_ok());
        assert!(padded.len().abs_diff(1024) < 40, "{}", padded.len());
    }
}
