//! The closing report: per-instance reconciliation (every ID once, orders and items
//! consistent) and revenue by segment, from the landed tables.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::common::{format_table, thousands};
use crate::ecommerce::generator::{segment_of, Plan, Segment, ITEM_ID_FACTOR, ORDER_ID_SPACE};
use crate::ecommerce::streamer::{ItemIndex, DATABASE, SCHEMA};

/// Something that answers read-only SQL over the landed tables (the emulator's SQLite).
pub(super) trait SqlSource {
    /// Runs `sql`, returning rows of JSON values.
    ///
    /// # Errors
    /// When the query fails.
    fn query(&self, sql: &str) -> Result<Vec<Vec<Value>>>;
}

impl SqlSource for rusqlite::Connection {
    fn query(&self, sql: &str) -> Result<Vec<Vec<Value>>> {
        Ok(snowpipe_emulator::offline::query(self, sql)
            .with_context(|| format!("query failed: {sql}"))?
            .1)
    }
}

impl SqlSource for snowpipe_emulator::Emulator {
    fn query(&self, sql: &str) -> Result<Vec<Vec<Value>>> {
        snowpipe_emulator::Emulator::query(self, sql)
            .with_context(|| format!("emulator query failed: {sql}"))
    }
}

/// The landed table's name in the emulator's SQLite.
pub(super) fn landed(table: &str) -> String {
    format!("\"{DATABASE}.{SCHEMA}.{table}\"")
}

/// One instance's reconciliation.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub(super) struct Reconciliation {
    /// The instance.
    pub instance: u64,
    /// Orders the plan gives it (when known).
    pub expected_orders: Option<u64>,
    /// Items of those orders (when known).
    pub expected_items: Option<u64>,
    /// `ORDERS` rows landed.
    pub orders: u64,
    /// Rows beyond the first for an `ORDER_ID`.
    pub duplicate_orders: u64,
    /// Order IDs missing: gaps below the highest landed one, plus any after it that the plan
    /// expects.
    pub missing_orders: u64,
    /// `ORDER_ITEMS` rows landed.
    pub items: u64,
    /// Rows beyond the first for an `ORDER_ITEM_ID`.
    pub duplicate_items: u64,
    /// Orders whose items do not match (count, IDs, or line totals vs the order total), or
    /// that have no items.
    pub inconsistent_orders: u64,
    /// Items whose order did not land.
    pub orphan_items: u64,
    /// Revenue (sum of distinct orders' `TOTAL_AMOUNT`), in cents.
    pub revenue_cents: i64,
}

impl Reconciliation {
    /// Every ID exactly once and orders and items consistent (and, when the plan is known, all
    /// of them there).
    pub(super) fn exact(&self) -> bool {
        self.duplicate_orders == 0
            && self.missing_orders == 0
            && self.duplicate_items == 0
            && self.inconsistent_orders == 0
            && self.orphan_items == 0
            && self.expected_items.is_none_or(|e| e == self.items)
    }
}

/// Revenue and volume of one segment.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub(super) struct SegmentTotals {
    /// The segment's name.
    pub segment: String,
    /// Orders.
    pub orders: u64,
    /// Items (by the orders' `ITEM_COUNT`).
    pub items: u64,
    /// Revenue after discounts, in cents.
    pub revenue_cents: i64,
    /// Discounts granted, in cents.
    pub discount_cents: i64,
    /// Orders with a discount.
    pub discounted_orders: u64,
}

/// The entry of the instance in `v`, created when the plan did not list it.
fn at<'a>(by: &'a mut BTreeMap<u64, Reconciliation>, v: &Value) -> &'a mut Reconciliation {
    let i = int(v) as u64;
    by.entry(i).or_insert_with(|| Reconciliation {
        instance: i,
        ..Default::default()
    })
}

fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f.round() as i64))
        .unwrap_or(0)
}

fn cents(column: &str) -> String {
    format!("CAST(ROUND({column} * 100) AS INTEGER)")
}

/// Reconciles the landed tables, per instance; with a plan, against what it expects.
///
/// # Errors
/// When a query fails.
pub(super) fn reconcile(db: &dyn SqlSource, plan: Option<&Plan>) -> Result<Vec<Reconciliation>> {
    let (orders, items) = (landed("ORDERS"), landed("ORDER_ITEMS"));
    let mut by: BTreeMap<u64, Reconciliation> = BTreeMap::new();
    if let Some(p) = plan {
        for i in 0..p.instances {
            let index = ItemIndex::new(p, i);
            by.insert(
                u64::from(i),
                Reconciliation {
                    instance: u64::from(i),
                    expected_orders: Some(p.orders_of(i)),
                    expected_items: Some(index.total()),
                    ..Default::default()
                },
            );
        }
    }
    let space = ORDER_ID_SPACE;
    for r in db.query(&format!(
        "SELECT ORDER_ID / {space}, COUNT(*), COUNT(DISTINCT ORDER_ID), MAX(ORDER_ID) % {space} \
         FROM {orders} GROUP BY 1"
    ))? {
        let e = at(&mut by, &r[0]);
        let (count, distinct, max_seq) = (int(&r[1]) as u64, int(&r[2]) as u64, int(&r[3]) as u64);
        e.orders = count;
        e.duplicate_orders = count - distinct;
        let expected = e.expected_orders.unwrap_or(0).max(max_seq);
        e.missing_orders = expected.saturating_sub(distinct);
    }
    for r in db.query(&format!(
        "SELECT ORDER_ID / {space}, COUNT(*), COUNT(DISTINCT ORDER_ITEM_ID) FROM {items} GROUP BY 1"
    ))? {
        let e = at(&mut by, &r[0]);
        e.items = int(&r[1]) as u64;
        e.duplicate_items = e.items - int(&r[2]) as u64;
    }
    let f = ITEM_ID_FACTOR;
    for r in db.query(&format!(
        "SELECT ORDER_ID / {space}, SUM({total}) \
         FROM (SELECT DISTINCT ORDER_ID, TOTAL_AMOUNT FROM {orders}) GROUP BY 1",
        total = cents("TOTAL_AMOUNT"),
    ))? {
        at(&mut by, &r[0]).revenue_cents = int(&r[1]);
    }
    for r in db.query(&format!(
        "SELECT o.ORDER_ID / {space}, COUNT(*) FROM \
           (SELECT DISTINCT ORDER_ID, ITEM_COUNT, TOTAL_AMOUNT FROM {orders}) o \
         LEFT JOIN (SELECT ORDER_ID, COUNT(*) AS n, MIN(ORDER_ITEM_ID) AS lo, \
                           MAX(ORDER_ITEM_ID) AS hi, SUM({line}) AS c \
                    FROM (SELECT DISTINCT ORDER_ITEM_ID, ORDER_ID, LINE_TOTAL FROM {items}) \
                    GROUP BY ORDER_ID) i ON i.ORDER_ID = o.ORDER_ID \
         WHERE i.n IS NULL OR i.n != o.ITEM_COUNT OR i.lo != o.ORDER_ID * {f} + 1 \
            OR i.hi != o.ORDER_ID * {f} + o.ITEM_COUNT OR i.c != {total} \
         GROUP BY 1",
        total = cents("o.TOTAL_AMOUNT"),
        line = cents("LINE_TOTAL"),
    ))? {
        let e = at(&mut by, &r[0]);
        e.inconsistent_orders = int(&r[1]) as u64;
    }
    for r in db.query(&format!(
        "SELECT ORDER_ID / {space}, COUNT(*) FROM {items} \
         WHERE ORDER_ID NOT IN (SELECT ORDER_ID FROM {orders}) GROUP BY 1"
    ))? {
        let e = at(&mut by, &r[0]);
        e.orphan_items = int(&r[1]) as u64;
    }
    Ok(by.into_values().collect())
}

/// Orders, items and revenue by customer segment (each `ORDER_ID` counted once).
///
/// # Errors
/// When the query fails.
pub(super) fn segments(db: &dyn SqlSource) -> Result<Vec<SegmentTotals>> {
    let rows = db.query(&format!(
        "SELECT CUSTOMER_ID, COUNT(*), SUM(ITEM_COUNT), SUM({total}), SUM({discount}), \
                SUM(DISCOUNT_PERCENT > 0) \
         FROM (SELECT DISTINCT ORDER_ID, CUSTOMER_ID, ITEM_COUNT, TOTAL_AMOUNT, DISCOUNT_AMOUNT, \
                               DISCOUNT_PERCENT FROM {orders}) \
         GROUP BY CUSTOMER_ID",
        total = cents("TOTAL_AMOUNT"),
        discount = cents("DISCOUNT_AMOUNT"),
        orders = landed("ORDERS"),
    ))?;
    let mut by: BTreeMap<Segment, SegmentTotals> = Segment::ALL
        .iter()
        .map(|s| {
            (
                *s,
                SegmentTotals {
                    segment: s.name().into(),
                    ..Default::default()
                },
            )
        })
        .collect();
    for r in rows {
        let t = by
            .get_mut(&segment_of(int(&r[0]) as u64))
            .expect("every segment");
        t.orders += int(&r[1]) as u64;
        t.items += int(&r[2]) as u64;
        t.revenue_cents += int(&r[3]);
        t.discount_cents += int(&r[4]);
        t.discounted_orders += int(&r[5]) as u64;
    }
    Ok(by.into_values().collect())
}

/// Dollars with thousands separators and cents.
pub(super) fn usd(cents: i64) -> String {
    format!(
        "{}.{:02}",
        thousands(cents.unsigned_abs() / 100),
        cents.unsigned_abs() % 100
    )
}

/// The reconciliation as a table.
pub(super) fn format_reconciliation(recs: &[Reconciliation]) -> String {
    let opt = |v: Option<u64>| v.map_or("-".into(), thousands);
    let rows: Vec<Vec<String>> = recs
        .iter()
        .map(|r| {
            vec![
                r.instance.to_string(),
                opt(r.expected_orders),
                thousands(r.orders),
                thousands(r.duplicate_orders),
                thousands(r.missing_orders),
                opt(r.expected_items),
                thousands(r.items),
                thousands(r.duplicate_items),
                thousands(r.inconsistent_orders + r.orphan_items),
                usd(r.revenue_cents),
                if r.exact() {
                    if r.expected_orders.is_some() {
                        "exactly once".into()
                    } else {
                        "consistent".into()
                    }
                } else {
                    "MISMATCH".into()
                },
            ]
        })
        .collect();
    format_table(
        &[
            "INSTANCE",
            "EXP_ORDERS",
            "ORDERS",
            "DUP",
            "MISSING",
            "EXP_ITEMS",
            "ITEMS",
            "DUP",
            "INCONSISTENT",
            "REVENUE_USD",
            "RESULT",
        ],
        &rows,
    )
}

/// Revenue by segment as a table.
pub(super) fn format_segments(segs: &[SegmentTotals]) -> String {
    let rows: Vec<Vec<String>> = segs
        .iter()
        .map(|s| {
            let n = s.orders.max(1);
            vec![
                s.segment.clone(),
                thousands(s.orders),
                thousands(s.items),
                usd(s.revenue_cents),
                usd(s.revenue_cents / n as i64),
                format!("{:.1}", s.discounted_orders as f64 * 100.0 / n as f64),
                usd(s.discount_cents),
            ]
        })
        .collect();
    format_table(
        &[
            "SEGMENT",
            "ORDERS",
            "ITEMS",
            "REVENUE_USD",
            "AVG_ORDER_USD",
            "DISCOUNTED_%",
            "DISCOUNTS_USD",
        ],
        &rows,
    )
}
