//! The dashboard's charts: the data they draw ([`DashboardData`], which `dashboard.rs` loads),
//! hand-drawn SVG (no script, no network) and the one HTML page that holds them.

use std::fmt::Write as _;

/// The data behind the four charts.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct DashboardData {
    /// `(day, ticket USD, pass USD, tickets, passes)`, by day.
    pub revenue: Vec<(String, f64, f64, u64, u64)>,
    /// `(resort, lift, rides, riders)`, busiest first.
    pub lifts: Vec<(String, String, u64, u64)>,
    /// `(hour of day, resort, rides)`.
    pub hourly: Vec<(u32, String, u64)>,
    /// `(product, ski days, rides, riders)`.
    pub products: Vec<(String, u64, u64, u64)>,
}

// ---------------------------------------------------------------------------------------
// Drawing: plain SVG.

const TICKET: &str = "#1a6dd6";
const PASS: &str = "#f28e2b";
const PALETTE: [&str; 10] = [
    "#1a6dd6", "#f28e2b", "#2ca25f", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];
const W: f64 = 620.0;
const H: f64 = 300.0;

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

use crate::common::thousands;

/// A short axis label: `12k`, `1.5M`.
pub(crate) fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

pub(crate) fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// A "nice" axis maximum and step for values up to `max`.
pub(crate) fn nice_scale(max: f64) -> (f64, f64) {
    if max <= 0.0 || !max.is_finite() {
        return (1.0, 0.25);
    }
    let rough = max / 4.0;
    let mag = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

struct Plot {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Plot {
    fn width(&self) -> f64 {
        W - self.left - self.right
    }
    fn height(&self) -> f64 {
        H - self.top - self.bottom
    }
    fn y(&self, v: f64, max: f64) -> f64 {
        self.top + self.height() * (1.0 - v / max)
    }
}

fn svg_open(out: &mut String, label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="{}" font-family="system-ui, sans-serif" font-size="11">"#,
        esc(label)
    );
}

/// Horizontal grid lines and y labels.
fn y_axis(out: &mut String, p: &Plot, max: f64, step: f64, prefix: &str) {
    let mut v = 0.0;
    while v <= max + step / 2.0 {
        let y = p.y(v, max);
        let _ = write!(
            out,
            r##"<line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e8ef"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#66758a">{prefix}{}</text>"##,
            p.left,
            W - p.right,
            p.left - 6.0,
            y + 4.0,
            short(v)
        );
        v += step;
    }
}

fn legend(out: &mut String, items: &[(&str, &str)], x0: f64, y: f64) {
    let mut x = x0;
    for (name, color) in items {
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="10" height="10" rx="2" fill="{color}"/><text x="{:.1}" y="{:.1}" fill="#1d2733">{}</text>"##,
            y - 9.0,
            x + 14.0,
            y,
            esc(name)
        );
        x += 24.0 + 6.5 * name.chars().count() as f64;
    }
}

fn empty(out: &mut String) {
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#66758a">no rows yet</text>"##,
        W / 2.0,
        H / 2.0
    );
}

/// Stacked bars: ticket and pass revenue per day.
pub(super) fn revenue_chart(rows: &[(String, f64, f64, u64, u64)]) -> String {
    let mut out = String::new();
    svg_open(&mut out, "Ticket and pass revenue by day");
    let p = Plot {
        left: 56.0,
        right: 12.0,
        top: 28.0,
        bottom: 40.0,
    };
    legend(
        &mut out,
        &[("Day tickets", TICKET), ("Season passes", PASS)],
        p.left,
        16.0,
    );
    if rows.is_empty() {
        empty(&mut out);
        out.push_str("</svg>");
        return out;
    }
    let (max, step) = nice_scale(rows.iter().map(|r| r.1 + r.2).fold(0.0, f64::max));
    y_axis(&mut out, &p, max, step, "$");
    let slot = p.width() / rows.len() as f64;
    let bar = (slot * 0.75).max(1.0);
    let every = (rows.len() as f64 / 12.0).ceil().max(1.0) as usize;
    for (i, (day, ticket, pass, tickets, passes)) in rows.iter().enumerate() {
        let x = p.left + slot * i as f64 + (slot - bar) / 2.0;
        let y_t = p.y(*ticket, max);
        let y_p = p.y(ticket + pass, max);
        let base = p.y(0.0, max);
        let _ = write!(
            out,
            r#"<g><title>{day}: tickets ${ticket:.2} ({tickets}), passes ${pass:.2} ({passes})</title><rect class="bar" x="{x:.1}" y="{y_t:.1}" width="{bar:.1}" height="{:.1}" fill="{TICKET}"/><rect class="bar" x="{x:.1}" y="{y_p:.1}" width="{bar:.1}" height="{:.1}" fill="{PASS}"/></g>"#,
            (base - y_t).max(0.0),
            (y_t - y_p).max(0.0),
        );
        if i % every == 0 {
            let label = day.get(5..).unwrap_or(day);
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#66758a">{}</text>"##,
                x + bar / 2.0,
                H - p.bottom + 16.0,
                esc(label)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars: rides of the busiest lifts.
pub(super) fn lifts_chart(rows: &[(String, String, u64, u64)]) -> String {
    let mut out = String::new();
    svg_open(&mut out, "Busiest lifts");
    let p = Plot {
        left: 270.0,
        right: 50.0,
        top: 10.0,
        bottom: 10.0,
    };
    if rows.is_empty() {
        empty(&mut out);
        out.push_str("</svg>");
        return out;
    }
    let max = rows.iter().map(|r| r.2).max().unwrap_or(1).max(1) as f64;
    let slot = p.height() / rows.len().max(5) as f64;
    let bar = slot * 0.7;
    for (i, (resort, lift, rides, riders)) in rows.iter().enumerate() {
        let y = p.top + slot * i as f64 + (slot - bar) / 2.0;
        let w = p.width() * *rides as f64 / max;
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#1d2733">{} <tspan fill="#66758a">· {}</tspan></text><g><title>{rides} rides by {riders} riders</title><rect class="bar" x="{:.1}" y="{y:.1}" width="{w:.1}" height="{bar:.1}" rx="2" fill="{TICKET}"/></g><text x="{:.1}" y="{:.1}" fill="#1d2733">{}</text>"##,
            p.left - 8.0,
            y + bar / 2.0 + 4.0,
            esc(lift),
            esc(resort),
            p.left,
            p.left + w + 5.0,
            y + bar / 2.0 + 4.0,
            thousands(*rides)
        );
    }
    out.push_str("</svg>");
    out
}

/// One line per resort: rides by hour of the day.
pub(super) fn hourly_chart(rows: &[(u32, String, u64)]) -> String {
    let mut out = String::new();
    svg_open(&mut out, "Lift rides by resort and hour");
    let p = Plot {
        left: 48.0,
        right: 12.0,
        top: 46.0,
        bottom: 30.0,
    };
    let mut resorts: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    resorts.sort_unstable();
    resorts.dedup();
    let items: Vec<(&str, &str)> = resorts
        .iter()
        .enumerate()
        .map(|(i, r)| (*r, PALETTE[i % PALETTE.len()]))
        .collect();
    // Two legend rows when there are many resorts.
    let half = items.len().div_ceil(2);
    if items.len() > 3 {
        legend(&mut out, &items[..half], p.left, 14.0);
        legend(&mut out, &items[half..], p.left, 30.0);
    } else {
        legend(&mut out, &items, p.left, 14.0);
    }
    if rows.is_empty() {
        empty(&mut out);
        out.push_str("</svg>");
        return out;
    }
    let lo = rows.iter().map(|r| r.0).min().unwrap_or(0);
    let hi = rows.iter().map(|r| r.0).max().unwrap_or(23).max(lo + 1);
    let (max, step) = nice_scale(rows.iter().map(|r| r.2).max().unwrap_or(0) as f64);
    y_axis(&mut out, &p, max, step, "");
    let x = |h: u32| p.left + p.width() * f64::from(h - lo) / f64::from(hi - lo);
    for h in lo..=hi {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#66758a">{h:02}h</text>"##,
            x(h),
            H - p.bottom + 16.0
        );
    }
    for (resort, color) in &items {
        let points: Vec<String> = (lo..=hi)
            .map(|h| {
                let v = rows
                    .iter()
                    .find(|r| r.0 == h && r.1 == *resort)
                    .map_or(0, |r| r.2);
                format!("{:.1},{:.1}", x(h), p.y(v as f64, max))
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="line" fill="none" stroke="{color}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            points.join(" "),
            esc(resort)
        );
    }
    out.push_str("</svg>");
    out
}

/// Bars: ski days by product, with rides and riders in the labels.
pub(super) fn products_chart(rows: &[(String, u64, u64, u64)]) -> String {
    let mut out = String::new();
    svg_open(&mut out, "Ski days by product");
    let p = Plot {
        left: 56.0,
        right: 12.0,
        top: 20.0,
        bottom: 44.0,
    };
    if rows.is_empty() {
        empty(&mut out);
        out.push_str("</svg>");
        return out;
    }
    let (max, step) = nice_scale(rows.iter().map(|r| r.1).max().unwrap_or(0) as f64);
    y_axis(&mut out, &p, max, step, "");
    let slot = p.width() / rows.len() as f64;
    let bar = (slot * 0.5).min(140.0);
    for (i, (product, days, rides, riders)) in rows.iter().enumerate() {
        let color = if product.contains("pass") {
            PASS
        } else {
            TICKET
        };
        let x = p.left + slot * i as f64 + (slot - bar) / 2.0;
        let y = p.y(*days as f64, max);
        let _ = write!(
            out,
            r##"<g><title>{rides} rides by {riders} riders</title><rect class="bar" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{:.1}" rx="2" fill="{color}"/></g><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#1d2733" font-weight="600">{} days</text><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#1d2733">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#66758a">{} rides · {} riders</text>"##,
            p.y(0.0, max) - y,
            x + bar / 2.0,
            y - 5.0,
            thousands(*days),
            x + bar / 2.0,
            H - p.bottom + 16.0,
            esc(product),
            x + bar / 2.0,
            H - p.bottom + 31.0,
            thousands(*rides),
            thousands(*riders),
        );
    }
    out.push_str("</svg>");
    out
}

/// The whole page: KPIs and the four charts, self-contained.
pub(super) fn render_html(data: &DashboardData, source: &str) -> String {
    let ticket_usd: f64 = data.revenue.iter().map(|r| r.1).sum();
    let pass_usd: f64 = data.revenue.iter().map(|r| r.2).sum();
    let tickets: u64 = data.revenue.iter().map(|r| r.3).sum();
    let passes: u64 = data.revenue.iter().map(|r| r.4).sum();
    let rides: u64 = data.products.iter().map(|r| r.2).sum();
    let ski_days: u64 = data.products.iter().map(|r| r.1).sum();
    let kpi = |value: String, label: &str| {
        format!(
            "<div class=\"kpi\"><b>{}</b><span>{}</span></div>",
            esc(&value),
            esc(label)
        )
    };
    let kpis = [
        kpi(
            format!("${}", thousands((ticket_usd + pass_usd).round() as u64)),
            "revenue",
        ),
        kpi(thousands(tickets), "day tickets"),
        kpi(thousands(passes), "season passes"),
        kpi(thousands(rides), "lift rides"),
        kpi(thousands(ski_days), "ski days"),
    ]
    .concat();
    let card = |id: &str, title: &str, note: &str, svg: String| {
        format!(
            "<section id=\"{id}\"><h2>{}</h2><p>{}</p>{svg}</section>",
            esc(title),
            esc(note)
        )
    };
    let charts = [
        card(
            "revenue",
            "Ticket and pass revenue by day",
            "Sum of PRICE_USD per purchase day (RESORT_TICKET, SEASON_PASS).",
            revenue_chart(&data.revenue),
        ),
        card(
            "lifts",
            "Busiest lifts",
            "Rides per lift, top ten (LIFT_RIDE).",
            lifts_chart(&data.lifts),
        ),
        card(
            "hourly",
            "Lift rides by resort and hour",
            "Rides per hour of the day, one line per resort (LIFT_RIDE).",
            hourly_chart(&data.hourly),
        ),
        card(
            "products",
            "Ski days by product",
            "Rider-days on the lifts: season pass holders vs day-ticket holders.",
            products_chart(&data.products),
        ),
    ]
    .concat();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ski resort dashboard</title>
<style>
body {{ margin: 0; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f5f7fa; color: #1d2733; }}
header {{ background: #10263f; color: #fff; padding: 12px 22px; }}
header h1 {{ margin: 0; font-size: 18px; font-weight: 600; }}
header span {{ color: #a9bdd6; }}
main {{ padding: 16px 22px; display: grid; gap: 16px; }}
.kpis {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }}
.kpi {{ background: #fff; border: 1px solid #e3e8ef; border-radius: 8px; padding: 10px 14px; }}
.kpi b {{ display: block; font-size: 22px; }}
.kpi span {{ color: #66758a; }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }}
section {{ background: #fff; border: 1px solid #e3e8ef; border-radius: 8px; padding: 12px 16px; }}
section h2 {{ margin: 0; font-size: 15px; }}
section p {{ margin: 2px 0 8px; color: #66758a; }}
svg {{ width: 100%; height: auto; display: block; }}
</style></head>
<body><header><h1>Ski resort dashboard</h1><span>The quickstart's Streamlit views · {}</span></header>
<main><div class="kpis">{kpis}</div><div class="charts">{charts}</div></main></body></html>
"#,
        esc(source)
    )
}
