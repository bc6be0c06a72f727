//! The connected parts: the all-in-one run, `stream`, `report` and `emulator`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use snowpipe_emulator::Emulator;

use crate::common::say::say_block;
use crate::common::write_private_key;
use snowpipe_streaming::StreamingIngestClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use crate::common::thousands;
use crate::common::EmulatorArgs;
use crate::ecommerce::cli::{ConnectArgs, ReportArgs, RunArgs, StreamArgs};
use crate::ecommerce::config::Settings;
use crate::ecommerce::generator::Plan;
use crate::ecommerce::progress;
use crate::ecommerce::report::{self, SqlSource};
use crate::ecommerce::streamer::{stream_instance, InstanceStats, ItemIndex, StreamOptions};

/// The Snowflake setup: the embedded emulator declares its catalog from it.
pub(super) const SETUP_SQL: &str = include_str!("sql/setup.sql");

/// How often progress lines are printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Connects with --profile or the SNOWFLAKE_* variables.
///
/// # Errors
/// When the profile cannot be read or the configuration is incomplete or rejected.
async fn connect(args: &ConnectArgs, settings: &Settings) -> Result<StreamingIngestClient> {
    crate::common::connect(args.profile.as_deref(), settings.max_client_lag).await
}

/// Stream options of one run.
fn stream_options(plan: Plan, settings: &Settings, connect: &ConnectArgs) -> Result<StreamOptions> {
    if !(connect.rate >= 0.0 && connect.rate.is_finite()) {
        bail!(
            "--rate must be a number of orders per second, 0 or more (got {})",
            connect.rate
        );
    }
    Ok(StreamOptions {
        plan,
        batch: settings.orders_batch_size,
        rate: connect.rate,
        channel_suffix: connect.channel_suffix.clone(),
        commit_timeout: (settings.max_client_lag * 3).max(Duration::from_secs(120)),
        max_failures: 10,
    })
}

/// Streams `instances` as tasks of this process, sharing one client.
///
/// # Errors
/// The first instance that fails.
///
/// # Cancellation
/// Dropping the future stops every instance; the next run resumes them.
async fn stream_tasks(
    client: &StreamingIngestClient,
    opts: &StreamOptions,
    stats: &[Arc<InstanceStats>],
) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for s in stats {
        let (client, opts, s) = (client.clone(), opts.clone(), s.clone());
        tasks.spawn(async move {
            let index = ItemIndex::new(&opts.plan, s.instance);
            stream_instance(&client, &opts, &index, s).await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("instance task panicked")??;
    }
    Ok(())
}

/// Per-instance counters with the plan's totals filled in.
fn new_stats(plan: &Plan, instances: impl Iterator<Item = u32>) -> Vec<Arc<InstanceStats>> {
    instances
        .map(|i| {
            Arc::new(InstanceStats {
                instance: i,
                orders_total: plan.orders_of(i),
                items_total: ItemIndex::new(plan, i).total(),
                ..Default::default()
            })
        })
        .collect()
}

/// `ecommerce stream`: one instance, until its last order and items are committed.
///
/// # Errors
/// When the connection cannot be set up or the instance keeps failing.
///
/// # Cancellation
/// Dropping the future stops streaming; the next run resumes.
pub(super) async fn stream(args: StreamArgs) -> Result<()> {
    let settings = Settings::load(args.connect.config.as_deref())?;
    let plan = args.plan.plan(&settings)?;
    plan.check_instance(args.instance)?;
    let opts = stream_options(plan, &settings, &args.connect)?;
    let client = connect(&args.connect, &settings).await?;
    let stats = new_stats(&plan, std::iter::once(args.instance));
    let (stop_tx, stop_rx) = watch::channel(false);
    let display = (!args.quiet).then(|| progress::spawn(stats.clone(), PROGRESS_EVERY, stop_rx));
    let started = Instant::now();
    let result = stream_tasks(&client, &opts, &stats).await;
    let _ = stop_tx.send(true);
    if let Some(d) = display {
        let _ = d.await;
    }
    let closed = client.close().await;
    result?;
    closed.context("closing the client failed")?;
    if !args.quiet {
        say_block!("{}", progress::summary(&stats, started.elapsed()));
    }
    let s = &stats[0];
    println!(
        "{}",
        serde_json::json!({ "generated": { "ORDERS": s.orders_total, "ORDER_ITEMS": s.items_total } })
    );
    Ok(())
}

/// `ecommerce report`.
///
/// # Errors
/// When the data cannot be read, or the tables do not hold each ID exactly once.
pub(super) fn report_command(args: &ReportArgs) -> Result<()> {
    let db = snowpipe_emulator::offline::open_read_only(&args.data_dir).with_context(|| {
        format!(
            "cannot open the emulator database in {}",
            args.data_dir.display()
        )
    })?;
    let plan = match args.plan.orders {
        Some(_) => Some(args.plan.plan(&Settings::default())?),
        None => None,
    };
    let exact = print_report(&db, plan.as_ref(), args.json)?;
    if !exact {
        bail!(
            "the landed tables do not hold every ID exactly once with consistent orders and items"
        );
    }
    Ok(())
}

/// Prints the reconciliation and the segment table (or one JSON line); returns whether the
/// data is exact.
fn print_report(db: &dyn SqlSource, plan: Option<&Plan>, json: bool) -> Result<bool> {
    let recs = report::reconcile(db, plan)?;
    let segs = report::segments(db)?;
    let exact = recs.iter().all(report::Reconciliation::exact);
    if json {
        println!(
            "{}",
            serde_json::json!({ "reconciliation": recs, "segments": segs, "exact": exact })
        );
    } else {
        println!("\nReconciliation (landed rows by ORDER_ID / ORDER_ITEM_ID)");
        print!("{}", report::format_reconciliation(&recs));
        println!("\nRevenue by segment");
        print!("{}", report::format_segments(&segs));
    }
    Ok(exact)
}

/// `ecommerce emulator`: prints `listening on URL` and serves until Ctrl-C or SIGTERM.
///
/// # Errors
/// When a file cannot be read or written, no key is given, or the emulator cannot start.
pub(super) async fn emulator(args: EmulatorArgs) -> Result<()> {
    args.serve(SETUP_SQL, snowpipe_emulator::Limits::default())
        .await
}

/// The embedded emulator of an all-in-one run, and what clients need to reach it.
struct Embedded {
    emulator: Emulator,
    private_pem: String,
}

/// The all-in-one run: every instance (as tasks, or as `stream` processes with
/// `--processes`), progress, summary and report, against an embedded emulator unless
/// `--profile` or `SNOWFLAKE_ACCOUNT` / `SNOWFLAKE_URL` is set.
///
/// # Errors
/// When setup or streaming fails, or the landed tables are not exact.
///
/// # Cancellation
/// Dropping the future stops everything; the temporary directory is removed.
pub(super) async fn run(args: RunArgs) -> Result<()> {
    let settings = Settings::load(args.connect.config.as_deref())?;
    let plan = args.plan.plan(&settings)?;
    let opts = stream_options(plan, &settings, &args.connect)?;
    let (_temp, dir) = crate::common::run_dir(args.keep.as_deref(), "ecommerce")?;
    let external = crate::common::external_configured(args.connect.profile.as_deref());
    let embedded = if external {
        None
    } else {
        let mut config =
            crate::common::embedded_config(vec![SETUP_SQL.to_string()], args.commit_delay);
        config.sink = args.sink;
        config.data_dir = (!args.sink).then(|| dir.join("emulator"));
        let (emulator, key) = Emulator::start_with_new_key(config)
            .await
            .context("cannot start the embedded emulator")?;
        Some(Embedded {
            emulator,
            private_pem: key.private_key_pem().to_owned(),
        })
    };
    println!(
        "ecommerce: {} orders over {} instance(s) ({}), seed {}, {} customers, batch {} orders, \
         client lag {} → {}",
        thousands(plan.orders),
        plan.instances,
        if args.processes { "processes" } else { "tasks" },
        plan.seed,
        thousands(plan.customers),
        thousands(settings.orders_batch_size),
        humantime::format_duration(settings.max_client_lag),
        match &embedded {
            Some(e) => format!(
                "embedded emulator at {} ({}commit delay {})",
                e.emulator.url(),
                if args.sink { "sink mode, " } else { "" },
                humantime::format_duration(args.commit_delay)
            ),
            None => "Snowflake".into(),
        }
    );
    let stats = new_stats(&plan, 0..plan.instances);
    let started = Instant::now();
    if args.processes {
        stream_processes(&args, &dir, embedded.as_ref(), &stats).await?;
    } else {
        let client = match &embedded {
            Some(e) => StreamingIngestClient::builder()
                .account("AUTOMATED_INTELLIGENCE")
                .user("AUTOMATED_INTELLIGENCE")
                .url(e.emulator.url())
                .private_key_pem(e.private_pem.clone())
                .max_client_lag(settings.max_client_lag)
                .build()
                .await
                .context("cannot connect to the embedded emulator")?,
            None => connect(&args.connect, &settings).await?,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let display = progress::spawn(stats.clone(), PROGRESS_EVERY, stop_rx);
        let result = stream_tasks(&client, &opts, &stats).await;
        let _ = stop_tx.send(true);
        let _ = display.await;
        let closed = client.close().await;
        result?;
        closed.context("closing the client failed")?;
    }
    let elapsed = started.elapsed();
    println!("\nStream ({:.2} s)", elapsed.as_secs_f64());
    print!("{}", progress::summary(&stats, elapsed));

    let exact = match &embedded {
        Some(e) if !args.sink => {
            let emu = &e.emulator;
            tokio::task::block_in_place(|| print_report(emu, Some(&plan), false))?
        }
        _ => {
            println!(
                "\n{}: every instance's last order_<id> and item_<id> tokens are committed; {}",
                if args.sink { "Sink mode" } else { "Snowflake" },
                if args.sink {
                    "the sink stores no rows, so there is nothing to reconcile"
                } else {
                    "check the tables with apps/src/ecommerce/sql/report.sql"
                }
            );
            true
        }
    };
    if args.json {
        let (orders, rows) = progress::totals(&stats);
        let secs = elapsed.as_secs_f64().max(1e-3);
        println!(
            "{}",
            serde_json::json!({
                "instances": plan.instances, "orders": orders, "rows": rows, "seconds": secs,
                "orders_per_s": orders as f64 / secs, "rows_per_s": rows as f64 / secs,
                "sink": args.sink, "processes": args.processes, "exact": exact,
            })
        );
    }
    if let Some(e) = embedded {
        e.emulator.shutdown().await;
    }
    if let Some(dir) = &args.keep {
        println!(
            "\nkept the emulator's data in {}",
            dir.join("emulator").display()
        );
    }
    if !exact {
        bail!(
            "the landed tables do not hold every ID exactly once with consistent orders and items"
        );
    }
    Ok(())
}

/// Runs every instance as an `ecommerce stream` child process and waits for all of them;
/// each child prints its own progress on stderr, and its totals line is checked.
async fn stream_processes(
    args: &RunArgs,
    dir: &Path,
    embedded: Option<&Embedded>,
    stats: &[Arc<InstanceStats>],
) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let key_file = dir.join("client_key.p8");
    if let Some(e) = embedded {
        write_private_key(&key_file, &e.private_pem)?;
    }
    let mut children = Vec::new();
    for s in stats {
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.arg("stream")
            .args(["--instance", &s.instance.to_string()])
            .args(["--instances", &args.plan.instances.to_string()])
            .args(["--seed", &args.plan.seed.to_string()])
            .args(["--customers", &args.plan.customers.to_string()])
            .args(["--rate", &args.connect.rate.to_string()])
            .args(["--channel-suffix", &args.connect.channel_suffix])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // The children's stderr is this run's: in its log format.
            .env(
                "ECOMMERCE_LOG_FORMAT",
                match snowpipe_cli_support::log::format() {
                    snowpipe_cli_support::log::LogFormat::Text => "text",
                    snowpipe_cli_support::log::LogFormat::Json => "json",
                },
            )
            .kill_on_drop(true);
        if let Some(n) = args.plan.orders {
            cmd.args(["--orders", &n.to_string()]);
        }
        let optional: [(&str, &Option<PathBuf>); 2] = [
            ("--config", &args.connect.config),
            ("--profile", &args.connect.profile),
        ];
        for (flag, value) in optional {
            if let Some(v) = value {
                cmd.arg(flag).arg(v);
            }
        }
        if let Some(e) = embedded {
            cmd.env("SNOWFLAKE_URL", e.emulator.url())
                .env("SNOWFLAKE_ACCOUNT", "AUTOMATED_INTELLIGENCE")
                .env("SNOWFLAKE_USER", "AUTOMATED_INTELLIGENCE")
                .env("SNOWFLAKE_PRIVATE_KEY_FILE", &key_file)
                .env_remove("SNOWFLAKE_PRIVATE_KEY");
        }
        // Only the first child prints progress, so lines do not interleave.
        if s.instance > 0 {
            cmd.arg("--quiet");
        }
        let child = cmd
            .spawn()
            .context("cannot start an `ecommerce stream` process")?;
        children.push((s.clone(), child));
    }
    for (s, mut child) in children {
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut last = String::new();
        while let Some(line) = lines.next_line().await? {
            last = line;
        }
        let status = child.wait().await?;
        if !status.success() {
            bail!("instance {} exited with {status}", s.instance);
        }
        let v: serde_json::Value = serde_json::from_str(&last)
            .with_context(|| format!("instance {}: unexpected last line {last:?}", s.instance))?;
        if v["generated"]["ORDERS"].as_u64() != Some(s.orders_total)
            || v["generated"]["ORDER_ITEMS"].as_u64() != Some(s.items_total)
        {
            bail!(
                "instance {} reports {v}, the plan says {} orders and {} items",
                s.instance,
                s.orders_total,
                s.items_total
            );
        }
        use std::sync::atomic::Ordering;
        s.orders_committed.store(s.orders_total, Ordering::Relaxed);
        s.items_committed.store(s.items_total, Ordering::Relaxed);
        s.sessions.store(1, Ordering::Relaxed);
    }
    Ok(())
}
