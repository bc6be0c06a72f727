/// Issue 56: a connector file that names a host other than Snowflake's (or this
/// machine's) without its own key is refused: the key of the sink's environment would
/// sign a token for that host. With the key in the file, or a Snowflake or loopback host,
/// it is used.
#[test]
fn a_file_cannot_send_the_environments_key_to_another_host() {
    let keys = |url: &str, key: bool| {
        let mut m = BTreeMap::new();
        m.insert("snowflake.url.name".to_owned(), url.to_owned());
        if key {
            m.insert("snowflake.private.key".to_owned(), "MIIB".to_owned());
        }
        m
    };
    for evil in [
        "https://myorg-acct.evil.example",
        "myorg-acct.snowflakecomputing.com.evil.example:443",
        "https://evil.example/myorg.snowflakecomputing.com",
    ] {
        let e = format!("{:#}", translate(&keys(evil, false)).unwrap_err());
        assert!(e.contains("not a Snowflake host"), "{evil}: {e}");
        assert!(
            translate(&keys(evil, true)).is_ok(),
            "{evil} with the file's key"
        );
    }
    for fine in [
        "myorg-acct.snowflakecomputing.com",
        "https://MYORG-ACCT.privatelink.snowflakecomputing.com:443",
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
    ] {
        assert!(translate(&keys(fine, false)).is_ok(), "{fine}");
    }
}
use super::*;

/// The options a file becomes, without the converters' defaults (`--key-converter string
/// --header-converter simple`, which every file gets unless it names others: see
/// `converters_and_flags_are_the_connectors`).
fn args_of(c: &ConnectorConfig) -> Vec<String> {
    let defaults = [
        ("--key-converter", "string"),
        ("--header-converter", "simple"),
    ];
    c.args
        .iter()
        .filter(|(f, v)| !defaults.contains(&(f.as_str(), v.as_deref().unwrap_or(""))))
        .flat_map(|(f, v)| std::iter::once(f.clone()).chain(v.clone()))
        .collect()
}

#[test]
fn converters_and_flags_are_the_connectors() {
    let args = |text: &str| {
        let c = translate(&parse(text).unwrap()).unwrap();
        c.args
            .iter()
            .flat_map(|(f, v)| std::iter::once(f.clone()).chain(v.clone()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // No converter named: the worker's String key and Simple header converters.
    assert!(args("topics=t").ends_with("--key-converter string --header-converter simple"));
    let a = args(
        "key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             key.converter.schemas.enable=false\n\
             header.converter=org.apache.kafka.connect.converters.ByteArrayConverter",
    );
    assert!(
        a.contains("--key-converter json --header-converter bytes"),
        "{a}"
    );
    let a = args(
        "value.converter=io.confluent.connect.protobuf.ProtobufConverter\n\
             value.converter.schema.registry.url=http://r:8081\n\
             key.converter=io.confluent.connect.protobuf.ProtobufConverter\n\
             header.converter=org.apache.kafka.connect.storage.StringConverter",
    );
    assert!(
        a.contains("--key-converter protobuf --header-converter string"),
        "{a}"
    );
    // Flags as `Boolean.parseBoolean` reads them: anything but `true` is false.
    let a = args(
        "snowflake.enable.schematization=no\nsnowflake.metadata.all=yes\n\
             snowflake.compatibility.enable.column.identifier.normalization=TRUE\n\
             snowflake.validation=client_side",
    );
    assert!(a.contains("--layout record-content"), "{a}");
    assert!(!a.contains("--metadata"), "{a}");
    assert!(
        a.contains("--normalize-columns --client-side-validation"),
        "{a}"
    );
    let a = args("snowflake.metadata.topic=no\nsnowflake.streaming.metadata.connectorPushTime=0");
    assert!(
        a.contains("--metadata --no-metadata-topic --no-push-time"),
        "{a}"
    );
}

const KEY_BODY: &str = "MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAsecretsecret";

/// A v4 connector's JSON file: every key the sink takes becomes its option or the
/// connection; the others are listed by name; no secret reaches an option or `Debug`.
#[test]
fn a_connector_file_becomes_the_sinks_options() {
    let json = format!(
        r#"{{"name": "snowflake-sink", "config": {{
                "connector.class": "com.snowflake.kafka.connector.SnowflakeStreamingSinkConnector",
                "tasks.max": "4",
                "topics": "orders, clicks,Mixed.Topic",
                "snowflake.topic2table.map": "orders:events,clicks:\"Click Log\"",
                "snowflake.url.name": "myorg-myacct.snowflakecomputing.com:443",
                "snowflake.user.name": "KAFKA",
                "snowflake.private.key": "{KEY_BODY}",
                "snowflake.role.name": "LOADER",
                "snowflake.database.name": "DB",
                "snowflake.schema.name": "PUBLIC",
                "snowflake.enable.schematization": "false",
                "snowflake.streaming.metadata.connectorPushTime": false,
                "behavior.on.null.values": "IGNORE",
                "errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": "dlq",
                "value.converter": "io.confluent.connect.avro.AvroConverter",
                "value.converter.schema.registry.url": "http://registry:8081",
                "value.converter.basic.auth.user.info": "sr-user:sr-secret",
                "buffer.count.records": "10000",
                "snowflake.metadata.createtime": "false"
            }}}}"#
    );
    let c = translate(&parse(&json).unwrap()).unwrap();
    assert_eq!(
        args_of(&c),
        [
            "--connector-name",
            "snowflake-sink",
            "--group",
            "snowpipe-kafka-snowflake-sink",
            "--topic",
            "orders",
            "--pipe",
            "EVENTS-STREAMING",
            "--topic",
            "clicks",
            "--pipe",
            "\"Click Log-STREAMING\"",
            "--topic",
            "Mixed.Topic",
            "--pipe",
            "\"Mixed.Topic-STREAMING\"",
            "--create-tables",
            "--database",
            "DB",
            "--schema",
            "PUBLIC",
            "--dead-letter-topic",
            "dlq",
            "--layout",
            "record-content",
            "--metadata",
            "--no-metadata-createtime",
            "--no-push-time",
            "--on-null-value",
            "skip",
            "--value-format",
            "avro",
            "--schema-registry-url",
            "http://registry:8081",
        ]
    );
    assert_eq!(c.ignored, ["buffer.count.records"]);
    assert!(
        c.notes.iter().all(|n| n.starts_with("no key.converter")),
        "{:?}",
        c.notes
    );
    assert!(c.registry_auth.is_some());
    let conn = &c.connection;
    assert_eq!(
        conn.url.as_deref(),
        Some("https://myorg-myacct.snowflakecomputing.com:443")
    );
    assert_eq!(conn.account.as_deref(), Some("MYORG-MYACCT"));
    assert_eq!(
        (conn.user.as_deref(), conn.role.as_deref()),
        (Some("KAFKA"), Some("LOADER"))
    );
    let pem = conn.private_key_pem.as_deref().unwrap();
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----\nMIIBVQ")
            && pem.ends_with("-----END PRIVATE KEY-----\n")
    );
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("secretsecret") && !shown.contains("sr-secret"),
        "{shown}"
    );
    assert!(!args_of(&c).iter().any(|a| a.contains("secret")));
}

/// The same keys in a `.properties` file (comments, `:` separators, continued lines);
/// the connector's defaults where keys are absent (schematized rows with metadata, JSON).
#[test]
fn a_properties_file_reads_the_same_and_defaults_are_the_connectors() {
    let text = "# connector\nname=snowflake-sink\n! also a comment\ntopics: orders,\\\n  clicks\n\
                    snowflake.database.name = DB\nsnowflake.schema.name=S\n";
    let c = translate(&parse(text).unwrap()).unwrap();
    assert_eq!(
        args_of(&c),
        [
            "--connector-name",
            "snowflake-sink",
            "--group",
            "snowpipe-kafka-snowflake-sink",
            "--topic",
            "orders",
            "--pipe",
            "\"orders-STREAMING\"",
            "--topic",
            "clicks",
            "--pipe",
            "\"clicks-STREAMING\"",
            "--create-tables",
            "--database",
            "DB",
            "--schema",
            "S",
            "--metadata",
        ]
    );
    // v3's sanitized table names on request.
    let c = translate(&parse("topics=orders,my-topic\nsnowflake.compatibility.enable.autogenerated.table.name.sanitization=true").unwrap()).unwrap();
    let pipes: Vec<_> = c
        .args
        .iter()
        .filter(|(f, _)| f == "--pipe")
        .filter_map(|(_, v)| v.clone())
        .collect();
    assert_eq!(pipes[0], "ORDERS-STREAMING");
    assert!(
        pipes[1].starts_with("MY_TOPIC_") && pipes[1].ends_with("-STREAMING"),
        "{pipes:?}"
    );
}

/// The per-field metadata flags become `--no-metadata-…` options; with
/// `snowflake.metadata.all=false` there is no metadata to trim.
#[test]
fn per_field_metadata_flags_become_options() {
    let text = "snowflake.metadata.topic=FALSE\nsnowflake.metadata.offset.and.partition=false\n\
                    snowflake.metadata.createtime=true\n";
    let c = translate(&parse(text).unwrap()).unwrap();
    assert_eq!(
        args_of(&c),
        [
            "--create-tables",
            "--metadata",
            "--no-metadata-topic",
            "--no-metadata-offset-and-partition"
        ]
    );
    assert!(c.ignored.is_empty(), "{c:?}");
    let c =
        translate(&parse("snowflake.metadata.all=false\nsnowflake.metadata.topic=false").unwrap())
            .unwrap();
    assert_eq!(
        args_of(&c),
        ["--create-tables"],
        "no metadata option: {c:?}"
    );
}

/// The registry's credentials reach the sink's settings parsed, never as an option, an
/// environment variable or in `Debug`; the decoder takes them.
#[test]
fn registry_credentials_are_handed_over_parsed_and_never_shown() {
    let text = "name=n\ntopics=t\nsnowflake.database.name=D\nsnowflake.schema.name=S\n\
                    value.converter=io.confluent.connect.avro.AvroConverter\n\
                    value.converter.schema.registry.url=http://127.0.0.1:8081\n\
                    value.converter.basic.auth.user.info=sr-user:sr-secret\n";
    let c = translate(&parse(text).unwrap()).unwrap();
    let argv = ["x", "--brokers", "b"]
        .into_iter()
        .map(str::to_owned)
        .chain(args_of(&c));
    let mut sink = crate::cli::args::parse_args(argv).unwrap();
    assert!(sink.schema_registry_basic_auth.is_none());
    sink.registry_auth = c.registry_auth;
    let shown = format!("{sink:?}");
    assert!(
        shown.contains("registry_auth: Some(BasicAuth(***))") && !shown.contains("sr-secret"),
        "{shown}"
    );
    let format = crate::rows::value_format::FormatArgs {
        value_format: sink.value_format,
        schema_registry_url: sink.schema_registry_url.clone(),
        schema_registry_basic_auth: None,
        registry_auth: sink.registry_auth.clone(),
        registry_auth_inherit: false,
        kafka_login: None,
    };
    assert!(format.decoder().unwrap().is_some());
    assert!(std::env::vars().all(|(_, v)| !v.contains("sr-secret")));
    // A JSON value converter with registry credentials: the credentials would be unused.
    let json = crate::rows::value_format::FormatArgs {
        value_format: crate::formats::ValueFormat::Json,
        schema_registry_url: None,
        ..format
    };
    let err = json.decoder().unwrap_err().to_string();
    assert!(err.contains("needs --value-format avro"), "{err}");
}

/// `snowflake.autocreate.table.type=snowflake`, or the key left out (the connector's
/// default), becomes `--create-tables`; `none` nothing (`iceberg` is refused: see the next
/// test). `--no-create-tables` on the command line keeps the file's `--create-tables` out.
#[test]
fn autocreate_table_type_snowflake_becomes_create_tables() {
    let c = translate(&parse("topics=t").unwrap()).unwrap();
    assert!(args_of(&c).contains(&"--create-tables".to_owned()), "{c:?}");
    let dir = std::env::temp_dir().join(format!("autocreate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.properties");
    std::fs::write(
        &file,
        "topics=t\nsnowflake.database.name=D\nsnowflake.schema.name=S\n",
    )
    .unwrap();
    for (extra, created) in [(None, true), (Some("--no-create-tables"), false)] {
        let mut argv: Vec<OsString> =
            vec!["x".into(), "--connector-config".into(), file.clone().into()];
        argv.extend(extra.map(OsString::from));
        let (out, _) = expand(argv).unwrap();
        let has = out.iter().any(|a| a == "--create-tables");
        assert_eq!(has, created, "{extra:?}: {out:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let c = translate(&parse("snowflake.autocreate.table.type=SNOWFLAKE").unwrap()).unwrap();
    assert_eq!(args_of(&c), ["--create-tables", "--metadata"]);
    let c = translate(&parse("snowflake.autocreate.table.type=none").unwrap()).unwrap();
    assert_eq!(args_of(&c), ["--metadata"]);
    assert!(c.ignored.is_empty(), "{c:?}");
}

/// `snowflake.streaming.classic.offset.migration` becomes `--migrate-v3-offsets` (with
/// `…include.connector.name=true`, `--migrate-v3-include-connector-name`); `skip` nothing;
/// another value is refused naming the three.
#[test]
fn classic_offset_migration_becomes_migrate_v3_offsets() {
    let key = "snowflake.streaming.classic.offset.migration";
    for (text, args) in [
        (
            format!("{key}=best_effort"),
            vec!["--migrate-v3-offsets", "best-effort"],
        ),
        (
            format!("{key}=STRICT\n{key}.include.connector.name=true"),
            vec![
                "--migrate-v3-offsets",
                "strict",
                "--migrate-v3-include-connector-name",
            ],
        ),
        (
            format!("{key}=skip\n{key}.include.connector.name=true"),
            vec![],
        ),
    ] {
        let c = translate(&parse(&text).unwrap()).unwrap();
        let mut expected: Vec<&str> = vec!["--create-tables"];
        expected.extend(args);
        expected.push("--metadata");
        assert_eq!(args_of(&c), expected, "{text}");
        assert!(c.ignored.is_empty(), "{c:?}");
    }
    let e = translate(&parse(&format!("{key}=sometimes")).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("skip, best_effort and strict"), "{e}");
}

/// What the sink cannot honour without writing other rows is refused, naming the key.
#[test]
fn what_would_change_the_rows_is_refused_naming_the_key() {
    for (text, needle) in [
            ("topics.regex=orders.*\nsnowflake.compatibility.enable.autogenerated.table.name.sanitization=true", "sanitization"),
            ("topics=a\nsnowflake.topic2table.map=a:T,a:U", "twice"),
            ("topics=a\nsnowflake.topic2table.map=a.*:T,ab:U", "overlap"),
            ("topics=a\nsnowflake.topic2table.map=a", "':' expected"),
            ("value.converter=org.apache.kafka.connect.json.JsonConverter\nvalue.converter.schemas.enable=true", "inline schema"),
            // No converter named: the worker's, JSON by default, envelope and all.
            ("value.converter.schemas.enable=true", "no value.converter is named"),
            ("value.converter=com.example.MyConverter", "MyConverter"),
            ("behavior.on.null.values=FAIL", "DEFAULT and IGNORE"),
            ("value.converter.basic.auth.user.info=sr-secret", "not USER:PASSWORD"),
            ("transforms=drop\ntransforms.drop.type=x", "transforms=drop"),
            ("value.converter=org.apache.kafka.connect.converters.ByteArrayConverter", "base64"),
            ("value.converter=com.snowflake.kafka.connector.records.SnowflakeJsonConverter", "fully qualified"),
            ("value.converter=com.blueapron.connect.protobuf.ProtobufConverter", "raw Protobuf"),
            ("key.converter=org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable=false"),
            ("header.converter=org.apache.kafka.connect.json.JsonConverter", "header.converter.schemas.enable=false"),
            ("header.converter=com.example.H", "SimpleHeaderConverter"),
            ("snowflake.validation=both", "server_side"),
            ("key.converter=io.confluent.connect.avro.AvroConverter\nkey.converter.schema.registry.url=http://u:sr-secret@a\nvalue.converter=io.confluent.connect.avro.AvroConverter\nvalue.converter.schema.registry.url=http://b", "one Schema Registry"),
            ("snowflake.autocreate.table.type=iceberg", "Iceberg"),
            ("[1,2]", "no `=`"),
        ] {
            let err = parse(text).and_then(|k| translate(&k)).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{text}: {err:#}");
            assert!(!format!("{err:#}").contains("sr-secret"), "{err:#}");
        }
    assert!(parse("[1]\n").is_err());
    // The key means nothing to other converters: taken, not refused.
    let text = "value.converter=org.apache.kafka.connect.storage.StringConverter\n\
                    value.converter.schemas.enable=true";
    let c = translate(&parse(text).unwrap()).unwrap();
    assert!(c.ignored.is_empty(), "{c:?}");
}

/// `topics.regex` and a regex map pass through (the tables of topics found at run time are
/// resolved then); listed topics are resolved through the map's regexes now.
#[test]
fn topics_regex_and_regex_maps_pass_through() {
    // As Java reads the file: `\\` is one backslash.
    let text = "topics.regex=orders\\\\..*\n\
                    snowflake.topic2table.map=orders\\\\.(.*):orders_$1\n\
                    snowflake.topic2table.map.regex.replacement=true\n";
    let c = translate(&parse(text).unwrap()).unwrap();
    assert_eq!(
        args_of(&c),
        [
            "--topic-regex",
            "orders\\..*",
            "--topic2table-map",
            "orders\\.(.*):orders_$1",
            "--topic2table-regex-replacement",
            "--create-tables",
            "--metadata",
        ]
    );
    assert!(c.ignored.is_empty(), "{:?}", c.ignored);
    // Listed topics: a regex entry names the table (without replacement, as written).
    let c = translate(
        &parse("topics=orders.eu,clicks\nsnowflake.topic2table.map=orders\\\\..*:all_orders")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        args_of(&c),
        [
            "--topic",
            "orders.eu",
            "--pipe",
            "ALL_ORDERS-STREAMING",
            "--topic",
            "clicks",
            "--pipe",
            "\"clicks-STREAMING\"",
            "--create-tables",
            "--metadata",
        ]
    );
}

/// The command line wins over the file, topics and pipes together.
#[test]
fn the_command_line_wins_over_the_file() {
    let dir = std::env::temp_dir().join(format!("snowpipe-kafka-cc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.properties");
    std::fs::write(
        &file,
        "name=x\ntopics=a\nsnowflake.database.name=DB\nsnowflake.schema.name=S\n",
    )
    .unwrap();
    let argv: Vec<OsString> = [
        "snowpipe-kafka",
        "--brokers",
        "b:9092",
        "--group",
        "mine",
        "--topic",
        "t",
        "--pipe",
        "P",
        "--connector-config",
    ]
    .iter()
    .map(OsString::from)
    .chain([file.clone().into_os_string()])
    .collect();
    let (out, config) = expand(argv).unwrap();
    let out: Vec<String> = out
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert!(config.is_some());
    assert_eq!(out.iter().filter(|a| *a == "--group").count(), 1);
    assert!(out.contains(&"mine".to_owned()) && !out.contains(&"snowpipe-kafka-x".to_owned()));
    assert_eq!(out.iter().filter(|a| *a == "--topic").count(), 1, "{out:?}");
    assert!(
        out.ends_with(&[
            "--database".into(),
            "DB".into(),
            "--schema".into(),
            "S".into(),
            "--metadata".into(),
            "--key-converter".into(),
            "string".into(),
            "--header-converter".into(),
            "simple".into()
        ]),
        "{out:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
    let (same, none) = expand(vec!["snowpipe-kafka".into(), "--brokers".into()]).unwrap();
    assert!(none.is_none() && same.len() == 2);
}

/// A `.properties` file with Java's escapes, continued lines and separators reads as
/// Java's `Properties.load` reads it (the expected map is what OpenJDK printed for this
/// text).
#[test]
fn a_properties_file_reads_as_java_reads_it() {
    let text = r#"topics.regex=orders\\..*
# a comment \
not.continued=1
  ! another comment
snowflake.topic2table.map = orders\\.(.*):orders_$1 ,\
     clicks:"Click\u0020Log"
key\ with\ spaces:va\lue\:x\=y
tabs\t=a\tb\nc\rd\fe
   spaced    value with trailing   
colon:: second colon kept
eq==second eq kept
white   =   after white
odd\\\
   next=v
even\\=w
last=\u00e9\u263a\uD83D\uDE00
empty=
sep.only.whitespace value here
winline=a\r
cont.at.end=x\"#;
    let keys = parse(text).unwrap();
    let expected: BTreeMap<String, String> = [
        ("colon", ": second colon kept"),
        ("cont.at.end", "x"),
        ("empty", ""),
        ("eq", "=second eq kept"),
        ("even\\", "w"),
        ("key with spaces", "value:x=y"),
        ("last", "\u{e9}\u{263a}\u{1f600}"),
        ("not.continued", "1"),
        ("odd\\next", "v"),
        ("sep.only.whitespace", "value here"),
        (
            "snowflake.topic2table.map",
            "orders\\.(.*):orders_$1 ,clicks:\"Click Log\"",
        ),
        ("spaced", "value with trailing   "),
        ("tabs\t", "a\tb\nc\rd\x0ce"),
        ("topics.regex", "orders\\..*"),
        ("white", "after white"),
        ("winline", "a\r"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(keys, expected);
    // Lines end at \r\n and at a lone \r too.
    let keys = parse("a=b\r\nc=d\re=f\n").unwrap();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(keys["c"], "d");
    // The regex reaches the option as Java's connector would read it.
    let c = translate(&parse("topics.regex=orders\\\\..*\n").unwrap()).unwrap();
    assert_eq!(args_of(&c)[..2], ["--topic-regex", "orders\\..*"]);
    // What Java refuses is refused naming the line, never its text.
    for (text, why) in [
        ("a=1\nb=\\u12G4s3cret", "line 2: malformed \\uXXXX"),
        ("a=1\n\nb=\\u12", "line 3: malformed"),
        ("a=1\n[1,2]", "line 2: no `=`"),
    ] {
        let err = format!("{:#}", parse(text).unwrap_err());
        assert!(err.contains(why), "{text}: {err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}

/// `value.converter.basic.auth.credentials.source`: SASL_INHERIT takes the Kafka login's
/// credentials (the decoder gets them, or refuses to start without them, naming the fix);
/// URL and unknown sources are refused naming the alternative.
#[test]
fn sasl_inherit_takes_the_kafka_login_and_other_sources_are_refused() {
    let base = "value.converter=io.confluent.connect.avro.AvroConverter\n\
                    value.converter.schema.registry.url=http://127.0.0.1:8081\n";
    let text = format!(
        "{base}value.converter.basic.auth.credentials.source=SASL_INHERIT\n\
             value.converter.basic.auth.user.info=sr-user:sr-secret\n"
    );
    let c = translate(&parse(&text).unwrap()).unwrap();
    assert!(
        c.registry_auth_inherit && c.registry_auth.is_none(),
        "{c:?}"
    );
    assert!(c.ignored.is_empty(), "{c:?}");
    assert!(
        c.notes[0].contains("user.info is not used"),
        "{:?}",
        c.notes
    );
    let properties: Vec<_> = ["sasl.username=kafka-user", "sasl.password=k-s3cret"]
        .iter()
        .map(|p| crate::source::properties::parse(p).unwrap())
        .collect();
    let login = crate::source::properties::kafka_login(&properties);
    assert!(!format!("{login:?}").contains("s3cret"));
    let format = |kafka_login| crate::rows::value_format::FormatArgs {
        value_format: crate::formats::ValueFormat::Avro,
        schema_registry_url: Some("http://127.0.0.1:8081".into()),
        schema_registry_basic_auth: None,
        registry_auth: c.registry_auth.clone(),
        registry_auth_inherit: c.registry_auth_inherit,
        kafka_login,
    };
    assert!(format(login).decoder().unwrap().is_some());
    let err = format!("{:#}", format(None).decoder().unwrap_err());
    assert!(
        err.contains("SASL_INHERIT") && err.contains("no sasl.username and sasl.password"),
        "{err}"
    );
    for (source, why) in [
        ("URL", "value.converter.basic.auth.user.info=USER:PASSWORD"),
        ("TOKEN", "the sink knows USER_INFO"),
    ] {
        let text = format!("{base}value.converter.basic.auth.credentials.source={source}\n");
        let err = format!("{:#}", translate(&parse(&text).unwrap()).unwrap_err());
        assert!(err.contains(why), "{source}: {err}");
    }
    let text = format!("{base}value.converter.basic.auth.credentials.source=user_info\n");
    assert!(
        !translate(&parse(&text).unwrap())
            .unwrap()
            .registry_auth_inherit
    );
}

/// Issue 56: a configuration path that never ends (`/dev/zero`, a FIFO) was read without
/// end; now it is refused at 4 MiB, naming the flag and the limit. A real file reads as before.
#[test]
fn a_configuration_file_is_read_up_to_its_limit() {
    let err = read_text(Path::new("/dev/zero"), "--connector-config").unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("cannot read --connector-config /dev/zero") && err.contains("more than 4 MiB"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.properties");
    std::fs::write(&file, "name=x\n").unwrap();
    assert_eq!(read_text(&file, "--topic-map").unwrap(), "name=x\n");
}
