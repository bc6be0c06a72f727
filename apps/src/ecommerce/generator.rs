//! Deterministic orders and order items: the same (seed, instance, order id) always gives the
//! same order and the same items, so a restarted instance regenerates exactly the rows its
//! channels have not committed, with no queue in between.
//!
//! IDs (see [`Plan`]):
//!
//! ```text
//! ORDER_ID      = instance × 100,000,000 + seq          seq = 1, 2, … n_instance
//! ORDER_ITEM_ID = ORDER_ID × 10 + line                   line = 1 … ITEM_COUNT (≤ 8)
//! tokens        = order_<ORDER_ID>, item_<ORDER_ITEM_ID>  (strictly increasing per channel)
//! ```

use std::ops::RangeInclusive;

use anyhow::{bail, Result};
use chrono::{Duration as Days, NaiveDate, NaiveDateTime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Serialize, Serializer};

use crate::ecommerce::catalog::{self, Product};

/// Order ids of one instance: `instance × ORDER_ID_SPACE + seq`.
pub(super) const ORDER_ID_SPACE: u64 = 100_000_000;
/// Item ids of one order: `order_id × ITEM_ID_FACTOR + line`.
pub(super) const ITEM_ID_FACTOR: u64 = 10;
/// Offset token prefix of the orders channel.
pub(super) const ORDER_PREFIX: &str = "order_";
/// Offset token prefix of the order items channel.
pub(super) const ITEM_PREFIX: &str = "item_";

/// Customer segment, with the seed's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub(super) enum Segment {
    /// $500–3000 orders, 10 % discounted by 5–10 %, 3–8 items.
    Premium,
    /// $100–800 orders, 40 % discounted by 5–20 %, 2–5 items.
    Standard,
    /// $20–300 orders, 50 % discounted by 10–30 %, 1–3 items.
    Basic,
}

/// What a segment's orders look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rules {
    /// Order amount before discount, in whole dollars (inclusive).
    pub amount_usd: (u32, u32),
    /// Share of orders with a discount, in percent.
    pub discounted_pct: u32,
    /// Discount of a discounted order, in percent (inclusive).
    pub discount_pct: (u32, u32),
    /// Items (lines) per order (inclusive).
    pub items: (u32, u32),
}

impl Segment {
    /// All segments.
    pub(super) const ALL: [Segment; 3] = [Segment::Premium, Segment::Standard, Segment::Basic];

    /// The seed's rules for this segment.
    pub(super) fn rules(self) -> Rules {
        match self {
            Segment::Premium => Rules {
                amount_usd: (500, 3000),
                discounted_pct: 10,
                discount_pct: (5, 10),
                items: (3, 8),
            },
            Segment::Standard => Rules {
                amount_usd: (100, 800),
                discounted_pct: 40,
                discount_pct: (5, 20),
                items: (2, 5),
            },
            Segment::Basic => Rules {
                amount_usd: (20, 300),
                discounted_pct: 50,
                discount_pct: (10, 30),
                items: (1, 3),
            },
        }
    }

    /// The name used in reports and in `CUSTOMERS.CUSTOMER_SEGMENT`.
    pub(super) fn name(self) -> &'static str {
        match self {
            Segment::Premium => "Premium",
            Segment::Standard => "Standard",
            Segment::Basic => "Basic",
        }
    }
}

/// An amount of money in cents, serialized as a decimal number of dollars (`12.34`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(super) struct Cents(pub i64);

impl Serialize for Cents {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The nearest double to a two-decimal number prints as that number.
        s.serialize_f64(self.0 as f64 / 100.0)
    }
}

/// A customer. Customers are not streamed: they are a pure function of their id.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) struct Customer {
    pub customer_id: u64,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub email: String,
    pub city: &'static str,
    pub state: &'static str,
    pub customer_segment: Segment,
    pub signup_date: NaiveDate,
}

/// One `ORDERS` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) struct Order {
    pub order_id: u64,
    pub customer_id: u64,
    #[serde(serialize_with = "timestamp")]
    pub order_date: NaiveDateTime,
    pub order_status: &'static str,
    pub item_count: u32,
    pub subtotal_amount: Cents,
    pub discount_percent: u32,
    pub discount_amount: Cents,
    pub total_amount: Cents,
    pub payment_method: &'static str,
    pub shipping_state: &'static str,
}

/// One `ORDER_ITEMS` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) struct OrderItem {
    pub order_item_id: u64,
    pub order_id: u64,
    pub line_number: u32,
    pub product_id: u32,
    pub product_name: &'static str,
    pub product_category: &'static str,
    pub quantity: u32,
    pub unit_price: Cents,
    pub discount_amount: Cents,
    pub line_total: Cents,
}

fn timestamp<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.format("%Y-%m-%d %H:%M:%S"))
}

/// How the orders are split among instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Plan {
    /// Seed of every random choice.
    pub seed: u64,
    /// Orders over all instances.
    pub orders: u64,
    /// Number of instances (channels pairs, ID spaces, customer ranges).
    pub instances: u32,
    /// Customers 1..=customers, partitioned among the instances by contiguous ranges.
    pub customers: u64,
}

impl Plan {
    /// Checks the plan can be carried out.
    ///
    /// # Errors
    /// When an instance would get no customer or more orders than its ID space holds.
    pub(super) fn validate(&self) -> Result<()> {
        if self.instances == 0 {
            bail!("--instances must be at least 1");
        }
        if self.customers < u64::from(self.instances) {
            bail!(
                "{} customers cannot be split among {} instances: pass --customers {} or more",
                self.customers,
                self.instances,
                self.instances
            );
        }
        if self.orders_of(0) >= ORDER_ID_SPACE {
            bail!(
                "{} orders over {} instances is more than {} per instance: use more --instances",
                self.orders,
                self.instances,
                ORDER_ID_SPACE - 1
            );
        }
        Ok(())
    }

    /// Checks `instance` is one of the plan's (0-based).
    ///
    /// # Errors
    /// When it is not.
    pub(super) fn check_instance(&self, instance: u32) -> Result<()> {
        if instance >= self.instances {
            bail!(
                "--instance {instance} is out of range: instances are numbered 0 to {} for --instances {}",
                self.instances - 1,
                self.instances
            );
        }
        Ok(())
    }

    /// Orders of `instance`: an even share, the first `orders % instances` get one more.
    pub(super) fn orders_of(&self, instance: u32) -> u64 {
        let k = u64::from(self.instances);
        self.orders / k + u64::from(u64::from(instance) < self.orders % k)
    }

    /// The customer ids `instance` sells to.
    pub(super) fn customers_of(&self, instance: u32) -> RangeInclusive<u64> {
        let k = u64::from(self.instances);
        let i = u64::from(instance);
        let start = 1 + self.customers * i / k;
        let end = self.customers * (i + 1) / k;
        start..=end
    }

    /// The `ORDER_ID` of `instance`'s `seq`-th order (1-based).
    pub(super) fn order_id(instance: u32, seq: u64) -> u64 {
        u64::from(instance) * ORDER_ID_SPACE + seq
    }

    /// The seq of `order_id` within `instance`'s ID space, if it is in it.
    pub(super) fn seq_of(instance: u32, order_id: u64) -> Option<u64> {
        let base = u64::from(instance) * ORDER_ID_SPACE;
        (order_id > base && order_id < base + ORDER_ID_SPACE).then(|| order_id - base)
    }

    /// Item counts of all of `instance`'s orders, index `seq - 1` (cheap: no rows are built).
    pub(super) fn item_counts(&self, instance: u32) -> Vec<u8> {
        let customers = self.customers_of(instance);
        (1..=self.orders_of(instance))
            .map(|seq| shape(self.seed, instance, seq, &customers).1 as u8)
            .collect()
    }

    /// An instance's order `seq` and its items.
    pub(super) fn order(&self, instance: u32, seq: u64) -> (Order, Vec<OrderItem>) {
        generate_order(self.seed, instance, seq, &self.customers_of(instance))
    }
}

/// `ORDER_ITEM_ID` of line `line` (1-based) of `order_id`.
pub(super) fn item_id(order_id: u64, line: u32) -> u64 {
    order_id * ITEM_ID_FACTOR + u64::from(line)
}

/// (`ORDER_ID`, line) of an `ORDER_ITEM_ID`.
pub(super) fn split_item_id(item_id: u64) -> (u64, u32) {
    (item_id / ITEM_ID_FACTOR, (item_id % ITEM_ID_FACTOR) as u32)
}

/// SplitMix64: a strong 64-bit mix, to derive independent streams from ids.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The segment of a customer: 20 % Premium, 45 % Standard, 35 % Basic.
pub(super) fn segment_of(customer_id: u64) -> Segment {
    match mix(customer_id ^ 0x05e9_7e17) % 100 {
        0..=19 => Segment::Premium,
        20..=64 => Segment::Standard,
        _ => Segment::Basic,
    }
}

/// The customer with this id.
pub(super) fn customer(customer_id: u64) -> Customer {
    let h = mix(customer_id);
    let pick = |shift: u32, n: usize| ((h >> shift) % n as u64) as usize;
    let first_name = catalog::FIRST_NAMES[pick(0, catalog::FIRST_NAMES.len())];
    let last_name = catalog::LAST_NAMES[pick(8, catalog::LAST_NAMES.len())];
    let (city, state) = catalog::CITIES[pick(16, catalog::CITIES.len())];
    let domain = catalog::EMAIL_DOMAINS[pick(24, catalog::EMAIL_DOMAINS.len())];
    Customer {
        customer_id,
        first_name,
        last_name,
        email: format!(
            "{}.{}{customer_id}@{domain}",
            first_name.to_lowercase(),
            last_name.to_lowercase()
        ),
        city,
        state,
        customer_segment: segment_of(customer_id),
        signup_date: NaiveDate::from_ymd_opt(2020, 1, 1).expect("valid date")
            + Days::days((h >> 32) as i64 % 1800),
    }
}

/// The random stream of one order.
fn order_rng(seed: u64, instance: u32, seq: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed ^ mix(u64::from(instance) ^ mix(seq))))
}

/// The first draws of an order: its customer and its number of items.
fn draw_shape(rng: &mut ChaCha8Rng, customers: &RangeInclusive<u64>) -> (u64, u32) {
    let customer_id = rng.gen_range(customers.clone());
    let (lo, hi) = segment_of(customer_id).rules().items;
    (customer_id, rng.gen_range(lo..=hi))
}

/// (customer, item count) of an order without building it.
pub(super) fn shape(
    seed: u64,
    instance: u32,
    seq: u64,
    customers: &RangeInclusive<u64>,
) -> (u64, u32) {
    draw_shape(&mut order_rng(seed, instance, seq), customers)
}

fn weighted(rng: &mut ChaCha8Rng, choices: &[(&'static str, u32)]) -> &'static str {
    let total: u32 = choices.iter().map(|c| c.1).sum();
    let mut x = rng.gen_range(0..total);
    for &(name, w) in choices {
        if x < w {
            return name;
        }
        x -= w;
    }
    choices[choices.len() - 1].0
}

fn product_for(rng: &mut ChaCha8Rng, unit_cents: i64) -> Product {
    let tier = match unit_cents {
        ..=4_000 => catalog::BUDGET,
        4_001..=20_000 => catalog::MIDRANGE,
        _ => catalog::PREMIUM,
    };
    tier[rng.gen_range(0..tier.len())]
}

/// Builds an instance's order `seq` (1-based) and its items.
///
/// The amount before discount is within the segment's range; line totals (quantity × unit
/// price − line discount) add up to the order's total to the cent.
pub(super) fn generate_order(
    seed: u64,
    instance: u32,
    seq: u64,
    customers: &RangeInclusive<u64>,
) -> (Order, Vec<OrderItem>) {
    let mut rng = order_rng(seed, instance, seq);
    let (customer_id, item_count) = draw_shape(&mut rng, customers);
    let rules = segment_of(customer_id).rules();
    let order_id = Plan::order_id(instance, seq);
    // Leave room for the cents lost when shares are divided by quantities (< 3 per line).
    let target = rng.gen_range(
        i64::from(rules.amount_usd.0) * 100 + 3 * i64::from(item_count)
            ..=i64::from(rules.amount_usd.1) * 100,
    );
    let discount_percent = if rng.gen_range(0..100) < rules.discounted_pct {
        rng.gen_range(rules.discount_pct.0..=rules.discount_pct.1)
    } else {
        0
    };
    let weights: Vec<i64> = (0..item_count).map(|_| rng.gen_range(1..=100)).collect();
    let weight_sum: i64 = weights.iter().sum();
    let mut items = Vec::with_capacity(item_count as usize);
    let mut given = 0;
    for (i, w) in weights.iter().enumerate() {
        let line = i as u32 + 1;
        let share = if line == item_count {
            target - given
        } else {
            target * w / weight_sum
        };
        given += share;
        let quantity: u32 = if share >= 300 {
            rng.gen_range(1..=3)
        } else {
            1
        };
        let unit = (share / i64::from(quantity)).max(1);
        let gross = unit * i64::from(quantity);
        let discount = (gross * i64::from(discount_percent) + 50) / 100;
        let (product_id, product_name, product_category) = product_for(&mut rng, unit);
        items.push(OrderItem {
            order_item_id: item_id(order_id, line),
            order_id,
            line_number: line,
            product_id,
            product_name,
            product_category,
            quantity,
            unit_price: Cents(unit),
            discount_amount: Cents(discount),
            line_total: Cents(gross - discount),
        });
    }
    let subtotal: i64 = items
        .iter()
        .map(|i| i.unit_price.0 * i64::from(i.quantity))
        .sum();
    let discount: i64 = items.iter().map(|i| i.discount_amount.0).sum();
    // Orders of one instance are placed about every 40 s, from 2025-01-01.
    let start = NaiveDate::from_ymd_opt(2025, 1, 1)
        .expect("valid date")
        .and_hms_opt(0, 0, 0)
        .expect("valid time");
    let order_date = start
        + chrono::Duration::seconds(seq as i64 * 40 + rng.gen_range(0..40))
        + chrono::Duration::milliseconds(i64::from(instance));
    let order = Order {
        order_id,
        customer_id,
        order_date,
        order_status: weighted(&mut rng, catalog::STATUSES),
        item_count,
        subtotal_amount: Cents(subtotal),
        discount_percent,
        discount_amount: Cents(discount),
        total_amount: Cents(subtotal - discount),
        payment_method: weighted(&mut rng, catalog::PAYMENT_METHODS),
        shipping_state: customer(customer_id).state,
    };
    (order, items)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn plan(orders: u64, instances: u32) -> Plan {
        Plan {
            seed: 42,
            orders,
            instances,
            customers: 1000,
        }
    }

    #[test]
    fn partition_covers_orders_and_customers_without_overlap() {
        for (orders, k) in [(10, 3), (7, 8), (100_000, 8), (1, 1)] {
            let p = plan(orders, k);
            p.validate().unwrap();
            assert_eq!((0..k).map(|i| p.orders_of(i)).sum::<u64>(), orders);
            let mut next = 1;
            for i in 0..k {
                let r = p.customers_of(i);
                assert_eq!(*r.start(), next, "instance {i} of {k}");
                assert!(r.end() >= r.start());
                next = r.end() + 1;
            }
            assert_eq!(next, p.customers + 1);
        }
        assert!(plan(10, 0).validate().is_err());
        let err = Plan {
            customers: 2,
            ..plan(10, 3)
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("--customers 3"), "{err}");
        assert!(plan(10, 3).check_instance(3).is_err());
        assert!(plan(10, 3).check_instance(2).is_ok());
    }

    #[test]
    fn ids_round_trip_and_instances_do_not_collide() {
        assert_eq!(Plan::order_id(0, 1), 1);
        assert_eq!(Plan::order_id(3, 17), 300_000_017);
        assert_eq!(Plan::seq_of(3, 300_000_017), Some(17));
        assert_eq!(Plan::seq_of(2, 300_000_017), None);
        assert_eq!(Plan::seq_of(3, 300_000_000), None);
        assert_eq!(split_item_id(item_id(300_000_017, 8)), (300_000_017, 8));
        // Item ids increase with (order, line), so item tokens strictly increase.
        assert!(item_id(9, 8) < item_id(10, 1));
        let p = plan(300, 3);
        let mut orders = HashSet::new();
        let mut items = HashSet::new();
        for i in 0..3 {
            for seq in 1..=p.orders_of(i) {
                let (o, its) = p.order(i, seq);
                assert!(orders.insert(o.order_id));
                for it in its {
                    assert!(items.insert(it.order_item_id));
                }
            }
        }
    }

    #[test]
    fn generation_is_deterministic_per_seed_instance_and_id() {
        let p = plan(50, 2);
        assert_eq!(p.order(1, 7), p.order(1, 7));
        assert_ne!(p.order(1, 7).0, p.order(0, 7).0);
        let other = Plan { seed: 43, ..p };
        assert_ne!(p.order(1, 7).0, other.order(1, 7).0);
        let counts = p.item_counts(1);
        for seq in 1..=p.orders_of(1) {
            let (o, items) = p.order(1, seq);
            assert_eq!(counts[seq as usize - 1] as usize, items.len());
            assert_eq!(o.item_count as usize, items.len());
            assert!(p.customers_of(1).contains(&o.customer_id));
        }
    }

    #[test]
    fn orders_follow_the_segment_rules_and_add_up() {
        let p = Plan {
            customers: 5000,
            ..plan(20_000, 4)
        };
        let mut seen: HashMap<Segment, (u64, u64)> = HashMap::new();
        for i in 0..4 {
            for seq in 1..=p.orders_of(i) {
                let (o, items) = p.order(i, seq);
                let rules = segment_of(o.customer_id).rules();
                let (lo, hi) = rules.amount_usd;
                assert!(
                    (i64::from(lo) * 100..=i64::from(hi) * 100).contains(&o.subtotal_amount.0),
                    "{o:?}"
                );
                assert!((rules.items.0..=rules.items.1).contains(&o.item_count));
                if o.discount_percent > 0 {
                    let (dlo, dhi) = rules.discount_pct;
                    assert!((dlo..=dhi).contains(&o.discount_percent));
                }
                let line_sum: i64 = items.iter().map(|i| i.line_total.0).sum();
                assert_eq!(line_sum, o.total_amount.0, "{o:?}");
                assert_eq!(o.subtotal_amount.0 - o.discount_amount.0, o.total_amount.0);
                for it in &items {
                    assert!(it.quantity >= 1 && it.unit_price.0 >= 1);
                    assert_eq!(
                        it.unit_price.0 * i64::from(it.quantity) - it.discount_amount.0,
                        it.line_total.0
                    );
                }
                let e = seen.entry(segment_of(o.customer_id)).or_default();
                e.0 += 1;
                e.1 += u64::from(o.discount_percent > 0);
            }
        }
        // Discount rates within a few points of the seed's 10 / 40 / 50 %.
        for s in Segment::ALL {
            let (n, discounted) = seen[&s];
            let pct = discounted as f64 * 100.0 / n as f64;
            let want = f64::from(s.rules().discounted_pct);
            assert!(
                (pct - want).abs() < 4.0,
                "{s:?}: {pct:.1} % discounted of {n}"
            );
        }
    }

    #[test]
    fn rows_serialize_as_the_table_columns() {
        let (o, items) = plan(1, 1).order(0, 1);
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["ORDER_ID"], 1);
        assert!(json["ORDER_DATE"]
            .as_str()
            .unwrap()
            .starts_with("2025-01-01 "));
        let total = json["TOTAL_AMOUNT"].as_f64().unwrap();
        assert_eq!((total * 100.0).round() as i64, o.total_amount.0);
        let item = serde_json::to_value(&items[0]).unwrap();
        assert_eq!(item["ORDER_ITEM_ID"], 11);
        assert_eq!(item["ORDER_ID"], 1);
        assert_eq!(serde_json::to_string(&Cents(1234)).unwrap(), "12.34");
        assert_eq!(serde_json::to_string(&Cents(5)).unwrap(), "0.05");
        let c = customer(17);
        assert_eq!(c, customer(17));
        assert_eq!(c.customer_segment, segment_of(17));
    }
}
