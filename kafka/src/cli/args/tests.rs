//! The command line's parsing: defaults, checks and the values each flag becomes.

/// `--metrics-addr 9102` is served on loopback; a host is taken as given.
#[test]
fn a_metrics_port_alone_is_on_loopback() {
    assert_eq!(
        parse_metrics_addr("9102").unwrap(),
        "127.0.0.1:9102".parse().unwrap()
    );
    assert_eq!(
        parse_metrics_addr("0.0.0.0:9102").unwrap(),
        "0.0.0.0:9102".parse().unwrap()
    );
    assert!(parse_metrics_addr("everywhere")
        .unwrap_err()
        .contains("HOST:PORT"));
}
use super::*;

#[test]
fn durations_in_the_forms_the_help_names() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1min"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert!(parse_duration("3").unwrap_err().contains("no unit"));
    assert!(parse_duration("3 fortnights").unwrap_err().contains("unit"));
    assert!(parse_duration("soon").unwrap_err().contains("500ms"));
    assert_eq!(parse_duration("720h"), Ok(Duration::from_secs(720 * 3600)));
    // Longer ones overflowed the clocks they are added to (a panic, not an error).
    let e = parse_duration("721h").unwrap_err();
    assert!(
        e.contains("longest accepted") && e.contains("30days"),
        "{e}"
    );
}

#[test]
fn sizes_in_the_forms_the_help_names() {
    assert_eq!(parse_bytes("512MiB"), Ok(MemoryBudget(512 << 20)));
    assert_eq!(parse_bytes("2GiB"), Ok(MemoryBudget(2 << 30)));
    assert_eq!(parse_bytes("64MB"), Ok(MemoryBudget(64_000_000)));
    assert_eq!(parse_bytes("40000000"), Ok(MemoryBudget(40_000_000)));
    assert!(parse_bytes("1MiB").unwrap_err().contains("smallest"));
    assert!(parse_bytes("lots").unwrap_err().contains("512MiB"));
    assert!(parse_bytes("3 parsecs").unwrap_err().contains("unit"));
    let b = parse_bytes("512MiB").unwrap();
    assert_eq!(b, MemoryBudget::DEFAULT);
    assert_eq!(b.prefetch_kib() * 1024, MemoryBudget::PREFETCH_MAX);
    // Every byte of the budget is someone's: the SDK has what the capped prefetch leaves.
    assert_eq!(b.queues() + b.sdk() + b.prefetch_kib() * 1024, 512 << 20);
    assert_eq!(b.sdk(), 352 << 20);
    assert_eq!(b.fetch_max_bytes(), 4 << 20);
    // A large budget does not deepen the prefetch, and the parts stay within the whole.
    let big = MemoryBudget(4 << 30);
    assert_eq!(big.prefetch_kib() * 1024, MemoryBudget::PREFETCH_MAX);
    assert_eq!(
        big.queues() + big.sdk() + big.prefetch_kib() * 1024,
        4 << 30
    );
    let small = MemoryBudget(MemoryBudget::MIN);
    assert_eq!(small.prefetch_kib() * 1024, MemoryBudget::MIN / 4);
    assert_eq!(small.sdk(), MemoryBudget::MIN / 2);
    assert_eq!(small.fetch_max_bytes(), 1 << 20);
}

/// The consumer fetches by the budget, pauses a full queue's partitions for 10 ms rather
/// than librdkafka's second, and `-X` still wins over each of these.
#[test]
fn the_consumer_fetches_by_the_budget_and_x_overrides_it() {
    let config = |extra: &str| args_with(extra).unwrap().consumer_config();
    let c = config("");
    assert_eq!(c.get("fetch.queue.backoff.ms"), Some("10"));
    assert_eq!(c.get("queued.max.messages.kbytes"), Some("32768"));
    assert_eq!(c.get("fetch.max.bytes"), Some("4194304"));
    let c = config("--memory-budget 64MiB");
    assert_eq!(c.get("queued.max.messages.kbytes"), Some("16384"));
    assert_eq!(c.get("fetch.max.bytes"), Some("2097152"));
    let c = config("-X fetch.queue.backoff.ms=250 -X fetch.max.bytes=52428800");
    assert_eq!(c.get("fetch.queue.backoff.ms"), Some("250"));
    assert_eq!(c.get("fetch.max.bytes"), Some("52428800"));
}

/// Without librdkafka's statistics no lag is known: `--until-idle` would never stop.
#[test]
fn statistics_cannot_be_turned_off() {
    let err = args_with("-X statistics.interval.ms=0")
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(format!("{err:#}").contains("--until-idle"), "{err:#}");
    args_with("-X statistics.interval.ms=5000")
        .unwrap()
        .validate()
        .unwrap();
}

#[test]
fn a_topic_map_adds_topics_with_their_pipes() {
    let map =
        parse_topic_map("[topics]\nclicks = \"CLICKS\"\n\"orders.v2\" = \"ORDERS\"\n").unwrap();
    assert_eq!(map.len(), 2);
    assert!(map.contains(&("orders.v2".into(), "ORDERS".into())));
    assert!(parse_topic_map("clicks = \"CLICKS\"")
        .unwrap_err()
        .to_string()
        .contains("[topics]"));
    assert!(parse_topic_map("[topics]\nclicks = 3")
        .unwrap_err()
        .to_string()
        .contains("string"));
    assert!(parse_topic_map("[topics").is_err());
}

/// Round six: `--topic` without `--pipe` goes to the table's default pipe, as Snowflake's
/// Kafka connector names it (the table named as the topic, case kept); a pipe count that fits
/// neither rule is still refused.
#[test]
fn a_topic_without_a_pipe_goes_to_its_default_pipe() {
    let args = parse_args(
        "x --brokers b --topic Orders --topic clicks --group g --database d --schema s"
            .split_whitespace(),
    )
    .unwrap();
    args.validate().unwrap();
    let routes = args.routes().unwrap();
    assert_eq!(routes.pipe_of("Orders").unwrap(), "\"Orders-STREAMING\"");
    assert_eq!(routes.pipe_of("clicks").unwrap(), "\"clicks-STREAMING\"");
    let three = parse_args(
        "x --brokers b --topic a --topic b --topic c --group g --database d --schema s \
         --pipe p --pipe q"
            .split_whitespace(),
    )
    .unwrap();
    assert!(format!("{:#}", three.validate().unwrap_err()).contains("2 --pipe for 3 --topic"));
}
