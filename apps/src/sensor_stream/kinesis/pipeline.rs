//! The Kinesis commands: `consume --source kinesis`, `lambda`, and the all-in-one run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::sync::watch;

use crate::common::say::say_block;
use crate::common::thousands;
use crate::sensor_stream::cli::{ConsumeArgs, LambdaArgs, RunArgs};
use crate::sensor_stream::consume::lock;
use crate::sensor_stream::event::Generator;
use crate::sensor_stream::kinesis::channel_cap::ChannelCap;
use crate::sensor_stream::kinesis::consume::{self, Options, Progress};
use crate::sensor_stream::kinesis::lambda::{Handler, Settings};
use crate::sensor_stream::kinesis::sequence::{Rules, SequenceNumber};
use crate::sensor_stream::kinesis::server::KinesisServer;
use crate::sensor_stream::kinesis::writer::Target;
use crate::sensor_stream::kinesis::{aws, report, shards, stream};
use crate::sensor_stream::latency::Histogram;
use crate::sensor_stream::pipeline::{connect, destination, stop_on_ctrl_c, DATABASE, SCHEMA};
use crate::sensor_stream::publish::check_rate;

/// The readings pipe of `sql/setup.sql`.
pub const PIPE: &str = "KINESIS_READINGS_PIPE";
/// The dead-letters pipe of `sql/setup.sql`.
pub const DEAD_LETTER_PIPE: &str = "KINESIS_DEAD_LETTERS_PIPE";

/// The sequence-number rules of `--trust-sequence-numbers`.
fn rules(trust: bool) -> Rules {
    if trust {
        tracing::warn!(
            "--trust-sequence-numbers: Kinesis' sequence numbers are checked only as AWS \
             documents them (decimal, at most 129 digits, increasing per shard)"
        );
        Rules::Documented
    } else {
        Rules::Layout
    }
}

/// `sensor_stream consume --source kinesis`.
///
/// # Errors
/// When Kinesis or Snowflake cannot be reached, a shard keeps failing, or another process
/// took over a channel.
pub async fn consume_cmd(args: ConsumeArgs) -> Result<()> {
    let kinesis = aws::client(&aws::Endpoint {
        url: args.kinesis.kinesis_endpoint.clone(),
        region: args.kinesis.region.clone(),
    })
    .await;
    let client = connect(&args.connect).await?;
    let opts = Options {
        stream: args.stream.stream.clone(),
        target: Target {
            database: args.database.clone(),
            schema: args.schema.clone(),
            pipe: args.pipe.clone(),
            dead_letter_pipe: args.kinesis.dead_letter_pipe.clone(),
            sequences: rules(args.kinesis.trust_sequence_numbers),
        },
        batch_max: args.connect.batch_max as i32,
        poll: Duration::from_millis(200),
        until_idle: args.until_idle,
        max_failures: 8,
    };
    let (_stop, stop_rx) = stop_on_ctrl_c();
    let progress: Progress = Progress::default();
    let started = Instant::now();
    let result = consume::consume(&client, &kinesis, &opts, progress.clone(), stop_rx).await;
    let closed = client.close().await;
    result?;
    closed.context("closing the client failed")?;
    let p = lock(&progress).clone();
    say_block!("{}", format_progress(&p, started.elapsed()));
    let consumed: BTreeMap<&String, serde_json::Value> = p
        .iter()
        .map(|(shard, s)| {
            (
                shard,
                serde_json::json!({
                    "rows": s.rows,
                    "committed": s.committed.as_ref().map(SequenceNumber::as_str),
                    "dead_lettered": s.dead_lettered,
                    "finished": s.finished,
                }),
            )
        })
        .collect();
    println!("{}", serde_json::json!({ "consumed": consumed }));
    Ok(())
}

/// `sensor_stream lambda`: serves the Lambda runtime API until the instance is shut down.
///
/// # Errors
/// When Snowflake cannot be reached at the cold start, or the runtime API fails.
pub async fn lambda_cmd(args: LambdaArgs) -> Result<()> {
    let started = Instant::now();
    let client = crate::common::connect(None, args.max_client_lag).await?;
    tracing::info!(
        "cold start: connected in {} ms",
        started.elapsed().as_millis()
    );
    let mut handler = Handler::new(
        client,
        Settings {
            target: Target {
                database: args.database.clone(),
                schema: args.schema.clone(),
                pipe: args.pipe,
                dead_letter_pipe: args.dead_letter_pipe,
                sequences: rules(args.trust_sequence_numbers),
            },
            parallelization_factor: args.parallelization_factor,
            failure_mode: args.failure_mode,
        },
    );
    if let Some(max) = args.max_key_channels {
        let sql = crate::common::builder_from(None)?
            .build_sql()
            .context(
                "MAX_KEY_CHANNELS counts channels through the SQL API, which cannot be set up",
            )?
            .database(&args.database)
            .schema(&args.schema);
        handler = handler.with_channel_cap(ChannelCap::new(sql, max as usize));
    }
    let handler = Arc::new(handler);
    lambda_runtime::run(lambda_runtime::service_fn(
        // The event with its arrival times read exactly (record.rs).
        move |event: lambda_runtime::LambdaEvent<
            crate::sensor_stream::kinesis::record::LambdaKinesisEvent,
        >| {
            let handler = handler.clone();
            async move {
                handler
                    .handle(event.payload.0, event.context.deadline)
                    .await
                    .map_err(|e| format!("{e:#}"))
            }
        },
    ))
    .await
    .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
}

/// The all-in-one run on a private kinesalite: publish for `--duration` at `--rate` (five of
/// the records bad), split the first shard halfway, consume, reconcile.
///
/// # Errors
/// When setup or consuming fails, or the tables do not hold every record exactly once with
/// every child shard after its parent.
pub async fn run(args: RunArgs) -> Result<()> {
    check_rate(args.rate)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let server = tokio::task::spawn_blocking(KinesisServer::start)
        .await?
        .context("cannot start a private Kinesis server")?;
    let kinesis = aws::local_client(&server.url());
    let name = args.stream.stream.clone();
    stream::ensure(&kinesis, &name, args.stream.shards).await?;
    let (embedded, client) = destination(&args).await?;
    let count = (u64::from(args.rate) * args.duration.as_millis() as u64 / 1000).max(10);
    println!(
        "sensor_stream --source kinesis: {} readings at {}/s over {} shards (one split halfway), \
         seed {seed} → {} | {}",
        thousands(count),
        thousands(u64::from(args.rate)),
        args.stream.shards,
        server.url(),
        match &embedded {
            Some(e) => format!("embedded emulator at {}", e.emulator.url()),
            None => "Snowflake".into(),
        },
    );
    let opts = Options {
        stream: name.clone(),
        target: Target {
            database: DATABASE.into(),
            schema: SCHEMA.into(),
            pipe: PIPE.into(),
            dead_letter_pipe: DEAD_LETTER_PIPE.into(),
            sequences: Rules::Layout,
        },
        batch_max: args.connect.batch_max as i32,
        poll: Duration::from_millis(100),
        until_idle: None,
        max_failures: 8,
    };
    let progress = Progress::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let consumer = {
        let (client, kinesis, opts, progress) = (
            client.clone(),
            kinesis.clone(),
            opts.clone(),
            progress.clone(),
        );
        tokio::spawn(
            async move { consume::consume(&client, &kinesis, &opts, progress, stop_rx).await },
        )
    };
    let published = publish_with_split(&kinesis, &name, seed, count, args.rate).await?;
    // Done when every record is a committed row or a stored dead letter.
    loop {
        let handled: u64 = lock(&progress)
            .values()
            .map(|p| p.rows + p.dead_lettered)
            .sum();
        if handled >= published || consumer.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    consumer.await.context("the consumer panicked")??;
    client.close().await.context("closing the client failed")?;
    let p = lock(&progress).clone();
    say_block!("{}", format_progress(&p, elapsed));
    let Some(embedded) = embedded else {
        println!("reconciliation: run the SELECTs at the end of sql/setup.sql in your account");
        return Ok(());
    };
    let stream_seqs = stream::all_sequences(&kinesis, &name).await?;
    let parents: BTreeMap<String, Vec<String>> = shards::list(&kinesis, &name)
        .await?
        .into_iter()
        .map(|(id, s)| (id, s.parents))
        .collect();
    let landed = report::against_tables(&embedded.sql, &stream_seqs, &parents).await?;
    print!("{}", report::format(&landed.checks));
    let exact = landed.checks.values().all(report::ShardCheck::exact);
    println!(
        "{} records: {}; children after their parents: {}",
        thousands(published),
        if exact {
            "every one exactly once"
        } else {
            "NOT exactly once"
        },
        if landed.violations.is_empty() {
            "yes".to_string()
        } else {
            format!("NO {:?}", landed.violations)
        },
    );
    if !landed.exact() {
        bail!("the tables do not hold the stream exactly once");
    }
    Ok(())
}

/// Publishes `count` readings at `rate`, five of them bad, splitting the first shard halfway.
async fn publish_with_split(
    kinesis: &aws_sdk_kinesis::Client,
    name: &str,
    seed: u64,
    count: u64,
    rate: u32,
) -> Result<u64> {
    let bad: [&[u8]; 5] = [
        b"not json",
        b"",
        b"[1,2]",
        br#"{"currentTemperature": 3}"#,
        &[0xff, 0xfe],
    ];
    let bad_at: Vec<u64> = (1..=5).map(|i| count / 6 * i).collect();
    let per_tick = (u64::from(rate) / 10).max(1);
    let mut generator = Generator::new(seed);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let (mut sent, mut split) = (0u64, false);
    while sent < count {
        tick.tick().await;
        // Generated when sent: eventTime is the publish time, what the latency counts from.
        let chunk: Vec<(String, Vec<u8>)> = (sent..count.min(sent + per_tick))
            .map(|i| {
                let event = generator.next_event(chrono::Utc::now());
                let body = match bad_at.iter().position(|b| *b == i) {
                    Some(j) => bad[j].to_vec(),
                    None => serde_json::to_vec(&event).expect("an event serializes"),
                };
                (event.sensor_id.to_string(), body)
            })
            .collect();
        sent += chunk.len() as u64;
        stream::put(kinesis, name, chunk).await?;
        if !split && sent >= count / 2 {
            stream::split(kinesis, name, "shardId-000000000000").await?;
            split = true;
        }
    }
    Ok(count)
}

/// Per-shard progress and latency, for stderr.
fn format_progress(p: &BTreeMap<String, consume::ShardProgress>, elapsed: Duration) -> String {
    let mut all = Histogram::default();
    let rows: Vec<Vec<String>> = p
        .iter()
        .map(|(shard, s)| {
            all.merge(&s.latency);
            vec![
                shard.clone(),
                thousands(s.rows),
                thousands(s.dead_lettered),
                thousands(s.skipped),
                s.sessions.to_string(),
                if s.finished { "finished" } else { "open" }.into(),
                s.latency.summary(),
            ]
        })
        .collect();
    let total: u64 = p.values().map(|s| s.rows).sum();
    format!(
        "{}{} rows committed in {:.1} s ({:.0} rows/s); arrival → committed {}\n",
        crate::common::format_table(
            &[
                "shard",
                "rows",
                "dead letters",
                "skipped",
                "sessions",
                "",
                "arrival → committed"
            ],
            &rows
        ),
        thousands(total),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64().max(0.001),
        all.summary(),
    )
}
