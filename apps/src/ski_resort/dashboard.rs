//! `ski_resort dashboard`: the quickstart's Streamlit dashboard as one self-contained HTML
//! page of SVG charts — ticket and pass revenue by day, the busiest lifts, rides by resort and
//! hour, ski days by product.
//!
//! The data comes from the queries in `sql/dashboard_queries.sql`, run through Snowflake's SQL
//! API (`snowpipe_streaming::sql`): on a real account (`--profile` or `SNOWFLAKE_*`), on a
//! running emulator (`SNOWFLAKE_URL`), or on a stopped emulator's data directory
//! (`--data-dir`, served by an emulator started for the purpose). One code path for all.
//! The charts are drawn here, as SVG: no script, no network, nothing to install.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use snowpipe_emulator::{Emulator, EmulatorConfig};
use snowpipe_streaming::sql::{QueryResult, SqlClient};
use snowpipe_streaming::ClientBuilder;

use crate::ski_resort::charts::DashboardData;
use crate::ski_resort::cli::DashboardArgs;

/// The dashboard's queries, each after a `-- name:` line.
pub(super) const QUERIES_SQL: &str = include_str!("sql/dashboard_queries.sql");

/// The named queries of [`QUERIES_SQL`], comments and the final `;` removed.
pub(super) fn queries() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in QUERIES_SQL.lines() {
        if let Some(name) = line.trim().strip_prefix("-- name:") {
            out.push((name.trim().to_string(), String::new()));
        } else if line.trim_start().starts_with("--") || line.trim().is_empty() {
            continue;
        } else if let Some((_, sql)) = out.last_mut() {
            sql.push_str(line);
            sql.push('\n');
        }
    }
    for (_, sql) in &mut out {
        *sql = sql.trim().trim_end_matches(';').trim().to_string();
    }
    out
}

fn text(r: &QueryResult, row: usize, col: usize) -> String {
    r.rows[row][col].clone().unwrap_or_default()
}

fn num(r: &QueryResult, row: usize, col: usize) -> f64 {
    r.rows[row][col]
        .as_deref()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn count(r: &QueryResult, row: usize, col: usize) -> u64 {
    num(r, row, col).round().max(0.0) as u64
}

/// Runs the dashboard's queries.
///
/// # Errors
/// When a query fails.
pub(super) async fn load(sql: &SqlClient) -> Result<DashboardData> {
    let mut data = DashboardData::default();
    for (name, statement) in queries() {
        let r = sql
            .query(&statement)
            .await
            .with_context(|| format!("dashboard query {name} failed"))?;
        let n = r.rows.len();
        match name.as_str() {
            "revenue_by_day" => {
                data.revenue = (0..n)
                    .map(|i| {
                        (
                            text(&r, i, 0),
                            num(&r, i, 1),
                            num(&r, i, 2),
                            count(&r, i, 3),
                            count(&r, i, 4),
                        )
                    })
                    .collect();
            }
            "busiest_lifts" => {
                data.lifts = (0..n)
                    .map(|i| {
                        (
                            text(&r, i, 0),
                            text(&r, i, 1),
                            count(&r, i, 2),
                            count(&r, i, 3),
                        )
                    })
                    .collect();
            }
            "rides_by_resort_and_hour" => {
                data.hourly = (0..n)
                    .map(|i| {
                        (
                            text(&r, i, 0).trim().parse().unwrap_or(0),
                            text(&r, i, 1),
                            count(&r, i, 2),
                        )
                    })
                    .collect();
            }
            "ski_days_by_product" => {
                data.products = (0..n)
                    .map(|i| {
                        (
                            text(&r, i, 0),
                            count(&r, i, 1),
                            count(&r, i, 2),
                            count(&r, i, 3),
                        )
                    })
                    .collect();
            }
            other => bail!("unknown dashboard query {other}"),
        }
    }
    Ok(data)
}

/// `ski_resort dashboard`: queries, draws and writes the page.
///
/// # Errors
/// When the source cannot be reached, a query fails or the file cannot be written.
pub(super) async fn run(args: DashboardArgs) -> Result<()> {
    let mut emulator = None;
    let builder = match &args.data_dir {
        Some(dir) => {
            let (emu, builder) = serve_data_dir(dir).await?;
            emulator = Some(emu);
            builder
        }
        None => {
            if !crate::common::external_configured(args.profile.as_deref()) {
                bail!(
                    "no source: pass --data-dir DIR (an emulator's data directory, e.g. the \
                     `emulator` folder of a --keep run), --profile profile.json, or set \
                     SNOWFLAKE_* variables"
                );
            }
            crate::common::builder_from(args.profile.as_deref())?
        }
    };
    let sql = builder
        .build_sql()?
        .database(&args.database)
        .schema(&args.schema)
        .warehouse(&args.warehouse);
    let data = load(&sql).await;
    if let Some(emu) = emulator {
        emu.shutdown().await;
    }
    let data = data?;
    let html = render_html(&data, &source_label(&args));
    std::fs::write(&args.out, html)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("dashboard written to {}", args.out.display());
    Ok(())
}

fn source_label(args: &DashboardArgs) -> String {
    match (&args.data_dir, &args.profile) {
        (Some(d), _) => format!("emulator data in {}", d.display()),
        (None, Some(p)) => format!("profile {}", p.display()),
        (None, None) => std::env::var("SNOWFLAKE_URL")
            .or_else(|_| std::env::var("SNOWFLAKE_ACCOUNT"))
            .unwrap_or_default(),
    }
}

/// Starts an emulator over `dir` (or `dir/emulator`, the layout of `--keep DIR`) on a free
/// loopback port and returns it with a client builder that reaches it.
async fn serve_data_dir(dir: &Path) -> Result<(Emulator, ClientBuilder)> {
    let db = snowpipe_emulator::offline::DB_FILE;
    let dir: PathBuf = if !dir.join(db).exists() && dir.join("emulator").join(db).exists() {
        dir.join("emulator")
    } else {
        dir.to_path_buf()
    };
    if !dir.join(db).exists() {
        bail!("{} holds no emulator database ({db})", dir.display());
    }
    let mut config = EmulatorConfig::default();
    config.data_dir = Some(dir);
    config.port = 0;
    let (emu, key) = Emulator::start_with_new_key(config)
        .await
        .context("cannot start an emulator over the data directory")?;
    let builder = ClientBuilder::new()
        .account("SKI_RESORT")
        .user("STREAMING_INGEST")
        .url(emu.url())
        .private_key_pem(key.private_key_pem());
    Ok((emu, builder))
}

pub(super) use crate::ski_resort::charts::render_html;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ski_resort::charts::*;

    #[test]
    fn queries_are_named_and_single_statements() {
        let q = queries();
        let names: Vec<&str> = q.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "revenue_by_day",
                "busiest_lifts",
                "rides_by_resort_and_hour",
                "ski_days_by_product"
            ]
        );
        for (name, sql) in &q {
            assert!(sql.starts_with("SELECT"), "{name}: {sql}");
            assert!(!sql.contains(';'), "{name}: {sql}");
            assert!(!sql.contains("--"), "{name}: {sql}");
        }
    }

    #[test]
    fn scales_are_round() {
        assert_eq!(nice_scale(87.0), (100.0, 25.0));
        assert_eq!(nice_scale(1234.0), (1500.0, 500.0));
        assert_eq!(nice_scale(0.0), (1.0, 0.25));
        assert_eq!(short(12_500.0), "12.5k");
    }

    #[test]
    fn page_draws_every_chart_from_the_data() {
        let data = DashboardData {
            revenue: vec![
                ("2025-12-20".into(), 1000.0, 500.0, 10, 1),
                ("2025-12-21".into(), 800.0, 0.0, 8, 0),
            ],
            lifts: vec![
                ("Vail".into(), "Eagle <Bahn>".into(), 120, 40),
                ("Vail".into(), "Chair 4".into(), 60, 30),
            ],
            hourly: vec![
                (9, "Vail".into(), 10),
                (10, "Vail".into(), 30),
                (9, "Aspen".into(), 5),
            ],
            products: vec![
                ("Day ticket".into(), 90, 300, 50),
                ("Season pass".into(), 40, 200, 12),
            ],
        };
        let html = render_html(&data, "test");
        // Two stacked bars per day, one per lift, one per product.
        assert_eq!(html.matches("class=\"bar\"").count(), 4 + 2 + 2);
        // One line per resort.
        assert_eq!(html.matches("class=\"line\"").count(), 2);
        assert!(html.contains("$2,300"), "total revenue KPI");
        assert!(html.contains("Eagle &lt;Bahn&gt;"), "labels are escaped");
        assert!(html.contains("12-20") && html.contains("09h") && html.contains("90 days"));
        assert!(!html.contains("<script"), "no script");
    }

    #[test]
    fn empty_data_still_draws_the_frames() {
        let html = render_html(&DashboardData::default(), "empty");
        assert_eq!(html.matches("<svg").count(), 4);
        assert_eq!(html.matches("no rows yet").count(), 4);
    }
}
