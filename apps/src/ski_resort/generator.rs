//! Seeded, deterministic simulation of a ski season: ticket and pass sales, and lift rides that
//! only ever use RFIDs already issued.
//!
//! The simulation runs on its own clock, independent of wall time, so the same seed always yields
//! the same rows in the same order whatever `--rate` is. Each simulated day runs from 08:00 to
//! 16:30 with a realistic hourly profile (morning rush, lunch dip). Memory stays flat: expired
//! tickets leave the pool at each day rollover and the pool is capped.

use chrono::{Datelike, Duration as ChronoDuration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use rand::distributions::{Distribution, WeightedIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ski_resort::catalog::{
    Resort, CITIES, EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES, MULTI_DAY_DISCOUNT_PCT, RESORTS,
    SEASON_PASSES, STREETS, TICKET_DAYS,
};
use crate::ski_resort::model::{
    cents_to_usd, Address, Customer, EmergencyContact, LiftRide, ResortTicket, Row, SeasonPass,
};

/// Most ticket and pass holders kept in memory; the oldest leave first beyond this.
const MAX_HOLDERS: usize = 20_000;
/// Lifts open at this time.
const OPEN: (u32, u32) = (8, 0);
/// Lifts close at this time.
const CLOSE: (u32, u32) = (16, 30);
/// Share of events that are ticket sales, pass sales (per mille); the rest are lift rides.
const TICKET_PER_MILLE: u32 = 75;
const PASS_PER_MILLE: u32 = 20;

/// Settings of a simulation.
#[derive(Debug, Clone)]
pub(super) struct GeneratorConfig {
    /// Seed of the ChaCha8 random stream.
    pub seed: u64,
    /// First simulated day; the clock starts at opening time.
    pub start: NaiveDate,
    /// Mean events per simulated weekday (weekends and holidays get more).
    pub events_per_day: u32,
}

/// A ticket or pass in someone's pocket.
#[derive(Debug)]
struct Holder {
    rfid: String,
    /// `None` for a season pass (valid everywhere).
    resort: Option<usize>,
    /// Resort of the current ski day (passes pick one per day).
    today_resort: usize,
    first_day: NaiveDate,
    expires: NaiveDate,
    /// Ski days allowed (tickets) or `u32::MAX` (passes).
    max_days: u32,
    days_used: u32,
    last_day: Option<NaiveDate>,
    /// Preferred lift index, so a rider lapping a favourite chair is more likely.
    favourite_lift: usize,
    /// Back in a lift line no earlier than this (ride up plus ski down).
    next_ride: NaiveDateTime,
}

/// The simulation. Call [`Generator::next_row`] repeatedly.
#[derive(Debug)]
pub(super) struct Generator {
    rng: ChaCha8Rng,
    clock: NaiveDateTime,
    events_per_day: u32,
    holders: Vec<Holder>,
    /// Indices into `holders` of people who already rode today.
    riding_today: Vec<usize>,
    resort_pick: WeightedIndex<u32>,
    lift_picks: Vec<WeightedIndex<u32>>,
    days_pick: WeightedIndex<u32>,
    pass_pick: WeightedIndex<u32>,
}

impl Generator {
    /// Starts a season at `config.start`, opening time.
    pub(super) fn new(config: &GeneratorConfig) -> Self {
        let weights = |it: &mut dyn Iterator<Item = u32>| -> WeightedIndex<u32> {
            WeightedIndex::new(it.collect::<Vec<_>>()).expect("catalog weights are positive")
        };
        Generator {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            clock: config.start.and_time(open_time()),
            events_per_day: config.events_per_day.max(1),
            holders: Vec::new(),
            riding_today: Vec::new(),
            resort_pick: weights(&mut RESORTS.iter().map(|r| r.weight)),
            lift_picks: RESORTS
                .iter()
                .map(|r| weights(&mut r.lifts.iter().map(|l| l.1)))
                .collect(),
            days_pick: weights(&mut TICKET_DAYS.iter().map(|d| d.1)),
            pass_pick: weights(&mut SEASON_PASSES.iter().map(|p| p.1)),
        }
    }

    /// The simulated time of the last event.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) fn clock(&self) -> NaiveDateTime {
        self.clock
    }

    /// Advances the clock and produces the next row.
    pub(super) fn next_row(&mut self) -> Row {
        self.advance_clock();
        let roll = self.rng.gen_range(0..1000);
        if roll < TICKET_PER_MILLE || self.holders.is_empty() {
            return Row::Ticket(self.sell_ticket());
        }
        if roll < TICKET_PER_MILLE + PASS_PER_MILLE {
            return Row::Pass(self.sell_pass());
        }
        match self.ride() {
            Some(ride) => Row::Ride(ride),
            // Nobody can ride right now (all tickets used up): someone buys one.
            None => Row::Ticket(self.sell_ticket()),
        }
    }

    fn advance_clock(&mut self) {
        let day = self.clock.date();
        let busy = day_multiplier(day);
        let open_secs = f64::from((CLOSE.0 * 60 + CLOSE.1) - (OPEN.0 * 60 + OPEN.1)) * 60.0;
        let mean_gap = open_secs / (f64::from(self.events_per_day) * busy);
        let intensity = hour_intensity(self.clock.time().hour_f64());
        // Exponential inter-arrival time, thinned by the hourly profile.
        let u: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        let gap = -u.ln() * mean_gap / intensity;
        self.clock += ChronoDuration::microseconds((gap * 1e6) as i64);
        if self.clock.time() >= close_time() {
            self.next_day();
        }
    }

    fn next_day(&mut self) {
        let day = self.clock.date() + ChronoDuration::days(1);
        let jitter = self.rng.gen_range(0..120_000_000i64);
        self.clock = day.and_time(open_time()) + ChronoDuration::microseconds(jitter);
        self.riding_today.clear();
        self.holders
            .retain(|h| h.expires >= day && h.days_used < h.max_days);
        if self.holders.len() > MAX_HOLDERS {
            let excess = self.holders.len() - MAX_HOLDERS;
            self.holders.drain(..excess);
        }
    }

    fn sell_ticket(&mut self) -> ResortTicket {
        let resort_idx = self.resort_pick.sample(&mut self.rng);
        let resort = &RESORTS[resort_idx];
        let days = TICKET_DAYS[self.days_pick.sample(&mut self.rng)].0;
        let purchase = self.clock;
        // Tickets bought after 14:00 start tomorrow.
        let first_day = if purchase.time() >= NaiveTime::from_hms_opt(14, 0, 0).expect("valid") {
            purchase.date() + ChronoDuration::days(1)
        } else {
            purchase.date()
        };
        // Multi-day tickets may be used within a window a little longer than their days.
        let window = i64::from(days - 1 + days.min(3));
        let expires = first_day + ChronoDuration::days(window);
        let price = self.ticket_price(resort, first_day, days);
        let holder = self.new_holder(Some(resort_idx), first_day, expires, days);
        let ticket = ResortTicket {
            txid: self.txid(),
            rfid: holder.rfid.clone(),
            resort: resort.name.to_string(),
            purchase_time: format_ts(purchase),
            price_usd: cents_to_usd(price),
            expiration_time: expires.format("%Y-%m-%d").to_string(),
            days,
            customer: self.customer(),
        };
        self.holders.push(holder);
        ticket
    }

    fn ticket_price(&mut self, resort: &Resort, day: NaiveDate, days: u32) -> u32 {
        let day_price =
            u64::from(resort.day_price_cents) * u64::from(pct_day_multiplier(day)) / 100;
        let discount = u64::from(MULTI_DAY_DISCOUNT_PCT * (days - 1)).min(40);
        let mut cents = day_price * u64::from(days) * (100 - discount) / 100;
        // One in five buys online in advance and saves 15 %.
        if self.rng.gen_ratio(1, 5) {
            cents = cents * 85 / 100;
        }
        // Window prices end in whole dollars.
        (cents / 100 * 100) as u32
    }

    fn sell_pass(&mut self) -> SeasonPass {
        let purchase = self.clock;
        let (price, _) = SEASON_PASSES[self.pass_pick.sample(&mut self.rng)];
        let expires = season_end(purchase.date());
        let holder = self.new_holder(None, purchase.date(), expires, u32::MAX);
        let pass = SeasonPass {
            txid: self.txid(),
            rfid: holder.rfid.clone(),
            purchase_time: format_ts(purchase),
            price_usd: cents_to_usd(price),
            expiration_time: expires.format("%Y-%m-%d").to_string(),
            customer: self.customer(),
        };
        self.holders.push(holder);
        pass
    }

    fn new_holder(
        &mut self,
        resort: Option<usize>,
        first_day: NaiveDate,
        expires: NaiveDate,
        max_days: u32,
    ) -> Holder {
        let today_resort = resort.unwrap_or_else(|| self.resort_pick.sample(&mut self.rng));
        Holder {
            rfid: format!("0x{:024x}", self.rng.gen::<u128>() >> 32),
            resort,
            today_resort,
            first_day,
            expires,
            max_days,
            days_used: 0,
            last_day: None,
            favourite_lift: self.lift_picks[today_resort].sample(&mut self.rng),
            next_ride: NaiveDateTime::MIN,
        }
    }

    fn ride(&mut self) -> Option<LiftRide> {
        let today = self.clock.date();
        // Most rides come from people already on the mountain (once they have skied down);
        // some from new arrivals.
        let mut found = None;
        if !self.riding_today.is_empty() && self.rng.gen_ratio(9, 10) {
            for _ in 0..8 {
                let i = self.riding_today[self.rng.gen_range(0..self.riding_today.len())];
                if self.holders[i].next_ride <= self.clock {
                    found = Some(i);
                    break;
                }
            }
        }
        if found.is_none() {
            for _ in 0..8 {
                let i = self.rng.gen_range(0..self.holders.len());
                let h = &self.holders[i];
                let can_start_day = h.first_day <= today
                    && h.expires >= today
                    && h.last_day != Some(today)
                    && h.days_used < h.max_days;
                if can_start_day {
                    found = Some(i);
                    break;
                }
            }
        }
        let idx = found?;
        if self.holders[idx].last_day != Some(today) {
            let resort = match self.holders[idx].resort {
                Some(r) => r,
                None => self.resort_pick.sample(&mut self.rng),
            };
            let favourite = self.lift_picks[resort].sample(&mut self.rng);
            let h = &mut self.holders[idx];
            h.days_used += 1;
            h.last_day = Some(today);
            h.today_resort = resort;
            h.favourite_lift = favourite;
            self.riding_today.push(idx);
        }
        let h = &self.holders[idx];
        let resort = &RESORTS[h.today_resort];
        let lift = if self.rng.gen_ratio(1, 3) {
            h.favourite_lift
        } else {
            self.lift_picks[h.today_resort].sample(&mut self.rng)
        };
        let (rfid, days_used) = (h.rfid.clone(), h.days_used);
        // Up the lift and down a run: 8 to 25 minutes until the next lift line.
        let lap = ChronoDuration::seconds(self.rng.gen_range(8 * 60..25 * 60));
        self.holders[idx].next_ride = self.clock + lap;
        Some(LiftRide {
            txid: self.txid(),
            rfid,
            resort: resort.name.to_string(),
            lift: resort.lifts[lift].0.to_string(),
            ride_time: format_ts(self.clock),
            activation_day_count: days_used,
        })
    }

    fn txid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.gen())
            .into_uuid()
            .to_string()
    }

    fn customer(&mut self) -> Customer {
        let first = pick(&mut self.rng, FIRST_NAMES);
        let last = pick(&mut self.rng, LAST_NAMES);
        let (city, state, zip3, area) = *pick(&mut self.rng, CITIES);
        let contact_first = pick(&mut self.rng, FIRST_NAMES);
        let contact_last = if self.rng.gen_ratio(2, 3) {
            last
        } else {
            pick(&mut self.rng, LAST_NAMES)
        };
        let email = format!(
            "{}.{}{}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            self.rng.gen_range(1..100),
            pick(&mut self.rng, EMAIL_DOMAINS)
        );
        Customer {
            name: format!("{first} {last}"),
            address: Address {
                street_address: format!(
                    "{} {}",
                    self.rng.gen_range(1..9999),
                    pick(&mut self.rng, STREETS)
                ),
                city: city.to_string(),
                state: state.to_string(),
                postalcode: format!("{zip3}{:02}", self.rng.gen_range(1..100)),
            },
            phone: self.phone(area),
            email,
            emergency_contact: EmergencyContact {
                name: format!("{contact_first} {contact_last}"),
                phone: self.phone(area),
            },
        }
    }

    fn phone(&mut self, area: &str) -> String {
        format!("{area}-555-{:04}", self.rng.gen_range(100..10_000))
    }
}

trait HourF64 {
    fn hour_f64(&self) -> f64;
}
impl HourF64 for NaiveTime {
    fn hour_f64(&self) -> f64 {
        use chrono::Timelike;
        f64::from(self.num_seconds_from_midnight()) / 3600.0
    }
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn open_time() -> NaiveTime {
    NaiveTime::from_hms_opt(OPEN.0, OPEN.1, 0).expect("valid opening time")
}

fn close_time() -> NaiveTime {
    NaiveTime::from_hms_opt(CLOSE.0, CLOSE.1, 0).expect("valid closing time")
}

/// Relative busyness by time of day: a morning rush, a lunch dip, an early-afternoon bump and a
/// quiet last hour.
fn hour_intensity(hour: f64) -> f64 {
    match hour {
        h if h < 9.0 => 0.6,
        h if h < 11.0 => 1.5,
        h if h < 12.0 => 1.2,
        h if h < 13.0 => 0.7,
        h if h < 14.5 => 1.1,
        h if h < 15.5 => 0.8,
        _ => 0.4,
    }
}

/// Weekends and the holiday weeks are busier (and pricier).
fn pct_day_multiplier(day: NaiveDate) -> u32 {
    let holiday = matches!(
        (day.month(), day.day()),
        (12, 20..=31) | (1, 1..=4) | (2, 14..=17)
    );
    let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
    100 + if holiday { 20 } else { 0 } + if weekend { 15 } else { 0 }
}

fn day_multiplier(day: NaiveDate) -> f64 {
    f64::from(pct_day_multiplier(day)) / 100.0
}

/// Season passes run until the third Sunday of April after the season started.
fn season_end(day: NaiveDate) -> NaiveDate {
    let year = if day.month() >= 7 {
        day.year() + 1
    } else {
        day.year()
    };
    NaiveDate::from_weekday_of_month_opt(year, 4, Weekday::Sun, 3).expect("April has 3 Sundays")
}

/// `YYYY-MM-DD HH:MM:SS.ffffff`, the TIMESTAMP_NTZ text form.
pub(super) fn format_ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// How long a generator run lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Limit {
    /// Stop after this many events (rows).
    Events(u64),
    /// Stop after this much wall time.
    Duration(std::time::Duration),
}

/// Settings of [`produce`].
#[derive(Debug, Clone)]
pub(super) struct ProduceOptions {
    /// The simulation.
    pub config: GeneratorConfig,
    /// When to stop.
    pub limit: Limit,
    /// Target events per second across all tables; 0 means as fast as possible.
    pub rate: f64,
}

/// Most rows per queue transaction.
const MAX_TX_ROWS: u64 = 1_000;

/// Runs the generator into `queue` until the limit or `stop`, at the target rate. Marks the
/// queue as having an active generator while it runs. Returns the rows generated per table.
///
/// Blocking: call it from a thread (or `spawn_blocking`).
///
/// # Errors
/// On queue errors; rows enqueued before the error stay enqueued.
pub(super) fn produce(
    queue: &mut crate::ski_resort::queue::Queue,
    opts: &ProduceOptions,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<[u64; 3]> {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    queue.set_generator_active(true)?;
    let result: anyhow::Result<[u64; 3]> = (|| {
        let mut generator = Generator::new(&opts.config);
        let mut counts = [0u64; 3];
        let mut produced = 0u64;
        let started = Instant::now();
        let mut rows = Vec::with_capacity(MAX_TX_ROWS as usize);
        while !stop.load(Ordering::Relaxed) {
            let remaining = match opts.limit {
                Limit::Events(n) => n - produced,
                Limit::Duration(d) if started.elapsed() >= d => 0,
                Limit::Duration(_) => u64::MAX,
            };
            if remaining == 0 {
                break;
            }
            let due = if opts.rate > 0.0 {
                ((started.elapsed().as_secs_f64() * opts.rate) as u64 + 1).saturating_sub(produced)
            } else {
                MAX_TX_ROWS
            };
            let n = due.min(MAX_TX_ROWS).min(remaining);
            if n == 0 {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            rows.clear();
            rows.extend((0..n).map(|_| generator.next_row()));
            queue.enqueue(&rows)?;
            for row in &rows {
                counts[row.table().index()] += 1;
            }
            produced += n;
        }
        Ok(counts)
    })();
    let cleared = queue.set_generator_active(false);
    let counts = result?;
    cleared?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::ski_resort::model::Table;

    fn config(seed: u64) -> GeneratorConfig {
        GeneratorConfig {
            seed,
            start: NaiveDate::from_ymd_opt(2025, 12, 20).unwrap(),
            events_per_day: 1500,
        }
    }

    #[test]
    fn same_seed_same_rows_different_seed_different_rows() {
        let run = |seed| {
            let mut g = Generator::new(&config(seed));
            (0..2000)
                .map(|_| g.next_row().to_json())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn rides_use_issued_rfids_and_txids_are_unique() {
        let mut g = Generator::new(&config(1));
        let mut issued = HashMap::new();
        let mut txids = HashSet::new();
        let mut per_table = [0u32; 3];
        let mut ride_days: HashMap<String, HashSet<String>> = HashMap::new();
        let mut last_ride: HashMap<String, NaiveDateTime> = HashMap::new();
        for _ in 0..20_000 {
            let row = g.next_row();
            assert!(txids.insert(row.txid().to_string()), "duplicate txid");
            per_table[row.table().index()] += 1;
            match row {
                Row::Ticket(t) => {
                    assert!((1..=7).contains(&t.days));
                    assert!(
                        t.price_usd >= 100.0 && t.price_usd < 2000.0,
                        "{}",
                        t.price_usd
                    );
                    assert!(t.expiration_time.as_str() >= &t.purchase_time[..10]);
                    issued.insert(t.rfid.clone(), (Some(t.resort), t.days));
                }
                Row::Pass(p) => {
                    assert!(p.price_usd >= 500.0 && p.price_usd <= 1100.0);
                    assert_eq!(p.expiration_time, "2026-04-19");
                    issued.insert(p.rfid.clone(), (None, u32::MAX));
                }
                Row::Ride(r) => {
                    let (resort, days) = issued.get(&r.rfid).expect("ride with unknown RFID");
                    if let Some(resort) = resort {
                        assert_eq!(resort, &r.resort, "ticket used at another resort");
                    }
                    let lifts = RESORTS.iter().find(|x| x.name == r.resort).unwrap().lifts;
                    assert!(lifts.iter().any(|l| l.0 == r.lift));
                    let t = &r.ride_time[11..16];
                    assert!(("08:00".."16:30").contains(&t), "ride at {t}");
                    let days_seen = ride_days.entry(r.rfid.clone()).or_default();
                    days_seen.insert(r.ride_time[..10].to_string());
                    assert_eq!(r.activation_day_count as usize, days_seen.len());
                    assert!(r.activation_day_count <= *days);
                    let at = NaiveDateTime::parse_from_str(&r.ride_time, "%Y-%m-%d %H:%M:%S%.6f")
                        .unwrap();
                    if let Some(prev) = last_ride.insert(r.rfid.clone(), at) {
                        assert!(
                            at - prev >= ChronoDuration::minutes(8),
                            "laps too quick: {prev} -> {at}"
                        );
                    }
                }
            }
        }
        // A plausible mix: mostly rides, some sales of each kind.
        assert!(per_table[Table::LiftRide.index()] > 15_000, "{per_table:?}");
        assert!(
            per_table[Table::ResortTicket.index()] > 1_000,
            "{per_table:?}"
        );
        assert!(per_table[Table::SeasonPass.index()] > 200, "{per_table:?}");
        // 20k events at 1500/day span about two weeks.
        assert!(g.clock().date() > NaiveDate::from_ymd_opt(2025, 12, 28).unwrap());
    }

    #[test]
    fn timestamps_have_microseconds() {
        let mut g = Generator::new(&config(3));
        let row = g.next_row();
        let Row::Ticket(t) = row else {
            panic!("first row is a ticket sale")
        };
        assert_eq!(t.purchase_time.len(), "2025-12-20 08:00:00.000000".len());
        assert!(NaiveDateTime::parse_from_str(&t.purchase_time, "%Y-%m-%d %H:%M:%S%.6f").is_ok());
    }
}
