//! Whose flags the pages quote: our binaries, the words prose uses for them, which page
//! sections are which binary's prose, and the flags a binary hides from its help. The tables
//! of [`crate::flags`], apart so the check reads as code.

/// Every binary of the workspace (a command line of one another test checks is not another
/// program's: it sets the paragraph's context all the same).
pub(crate) const OURS: &[&str] = &[
    "snowpipe-kafka",
    "snowpipe-kafka-lab",
    "snowpipe-emulator",
    "snowpipe",
    "ski_resort",
    "ecommerce",
    "sensor_stream",
    "table_replay",
    "throughput",
];

/// Words prose uses for a binary before `'s` ("the emulator's `--grant`").
pub(crate) const ALIASES: &[(&str, &str)] = &[
    ("emulator", "snowpipe-emulator"),
    ("sink", "snowpipe-kafka"),
    ("lab", "snowpipe-kafka-lab"),
];

const APPS: &[&str] = &[
    "ski_resort",
    "ecommerce",
    "sensor_stream",
    "table_replay",
    "throughput",
];

/// Whose flags a flag quoted in prose is: (page, section, binaries). The section is the start
/// of a level-2 heading's text, `""` the text before the first one; `"*"` every section of the
/// page without an entry of its own.
pub(crate) const PROSE: &[(&str, &str, &[&str])] = &[
    ("kafka/README.md", "*", &["snowpipe-kafka"]),
    // The sink's pages the README points at for the long form.
    ("kafka/docs/configuration.md", "*", &["snowpipe-kafka"]),
    ("kafka/docs/operations.md", "*", &["snowpipe-kafka"]),
    ("kafka/docs/operations.md", "Soak", &["snowpipe-kafka-lab"]),
    (
        "kafka/docs/moving-from-the-connector.md",
        "*",
        &["snowpipe-kafka"],
    ),
    ("kafka/docs/schema-registry.md", "*", &["snowpipe-kafka"]),
    ("kafka/docs/tests.md", "*", &["snowpipe-kafka"]),
    ("docs/PERFORMANCE.md", "The Kafka sink", &["snowpipe-kafka"]),
    ("emulator/README.md", "*", &["snowpipe-emulator"]),
    (
        "emulator/docs/sql-and-tables.md",
        "*",
        &["snowpipe-emulator"],
    ),
    // The options of emulator/scripts/official_sdk_check.py.
    (
        "emulator/README.md",
        "Conformance with the official SDK",
        &[],
    ),
    ("README.md", "The emulator", &["snowpipe-emulator"]),
    ("README.md", "Applications", APPS),
    ("README.md", "Kafka", &["snowpipe-kafka"]),
    ("README.md", "Loading files", &["snowpipe"]),
    ("load/README.md", "*", &["snowpipe"]),
    ("apps/README.md", "", APPS),
    ("apps/docs/ski_resort.md", "*", &["ski_resort"]),
    ("apps/docs/ecommerce.md", "*", &["ecommerce"]),
    ("apps/docs/sensor_stream.md", "*", &["sensor_stream"]),
    ("apps/docs/table_replay.md", "*", &["table_replay"]),
    ("apps/docs/throughput.md", "*", &["throughput"]),
];

/// Flags a binary accepts but its `--help` hides, which the pages may still name: (binary,
/// flag). The check makes sure the binary still accepts each.
pub(crate) const HIDDEN: &[(&str, &str)] = &[
    // The old spelling of `--binary-format hex` (emulator/README.md says so).
    ("snowpipe-emulator", "--binary-hex"),
];
