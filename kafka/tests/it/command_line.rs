//! The binary's command line as a user meets it: security settings it cannot honour are
//! refused before it connects anywhere, with the fix; secrets never reach its output.

use std::process::Output;

use crate::common::bin;

/// Runs the sink against brokers nobody listens on (it must stop before connecting).
fn run(extra: &[&str]) -> Output {
    std::process::Command::new(bin())
        .args(["--brokers", "127.0.0.1:9", "--topic", "t", "--group", "g"])
        .args(["--database", "D", "--schema", "S", "--pipe", "P"])
        .args(extra)
        .env_remove("SNOWFLAKE_PRIVATE_KEY")
        .env("RUST_LOG", "debug")
        .output()
        .expect("run snowpipe-kafka")
}

/// The sink refuses `extra` (`what`, for the messages): it exits 1 naming `names`, and neither
/// stdout nor stderr holds `secret`.
fn assert_refused_without_printing(extra: &[&str], what: &str, names: &str, secret: &str) {
    let out = run(extra);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "{what}: the secret reached the output:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains(names), "{what}: {stderr}");
}

#[test]
fn tls_in_a_build_without_it_is_refused_with_the_fix_and_secrets_stay_hidden() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("client.properties");
    std::fs::write(
        &file,
        "security.protocol=SASL_SSL\nsasl.mechanisms=PLAIN\nsasl.username=alice\n\
         sasl.password=file-secret-7\n",
    )
    .expect("write");
    let out = run(&[
        "--kafka-config",
        file.to_str().expect("utf-8 path"),
        "-X",
        "ssl.key.password=cli-secret-9",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stderr.contains("file-secret-7") && !stderr.contains("cli-secret-9"),
        "a secret reached the output: {stderr}"
    );
    assert!(!stdout.contains("secret"), "{stdout}");
    assert!(
        stderr.contains("ssl.key.password on the command line is visible"),
        "no warning about the -X secret: {stderr}"
    );
    if cfg!(feature = "tls") {
        return; // a TLS build goes on to connect; the rest is for the default build
    }
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("security.protocol=SASL_SSL needs TLS")
            && stderr.contains("--features tls"),
        "the refusal names the fix: {stderr}"
    );
}

#[test]
fn a_bad_properties_file_names_the_line_not_its_value() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("client.properties");
    std::fs::write(&file, "# ok\nsasl.password hunter2\n").expect("write");
    let out = run(&["-F", file.to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 2 is not KEY=VALUE"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let missing = run(&["--kafka-config", "/nonexistent/client.properties"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read --kafka-config /nonexistent/client.properties"),
        "{stderr}"
    );
}

/// Every way a secret could reach the output, run as a user would: each `client.properties`
/// below holds a secret in a property librdkafka refuses (a Java-only key, a bad value, a
/// misspelt key). The sink stops before connecting, names the key and the fix, and neither
/// stdout nor stderr (at debug level) holds the secret.
#[test]
fn refused_properties_never_print_their_secret() {
    let secret = "S3cr3t-vAlue-91";
    let cases = [
        (
            format!(
                "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \
                 required username='KEY' password='{secret}';"
            ),
            "sasl.username and sasl.password",
        ),
        (
            format!("basic.auth.user.info=KEY:{secret}"),
            "Schema Registry",
        ),
        (format!("session.timeout.ms={secret}"), "session.timeout.ms"),
        (format!("sasl.passwrd={secret}"), "sasl.passwrd"),
        (
            format!("ssl.truststore.password={secret}"),
            "ssl.ca.location",
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, (line, names)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("client-{i}.properties"));
        std::fs::write(&file, format!("security.protocol=SASL_PLAINTEXT\n{line}\n"))
            .expect("write");
        let args = ["--kafka-config", file.to_str().expect("utf-8 path")];
        assert_refused_without_printing(&args, line, names, "S3cr3t");
    }
}

/// A `-X` typo (`:` for `=`, or no key) is refused naming the fix, and neither the parser of
/// the command line nor the sink repeats it: it may be a password.
#[test]
fn a_mistyped_x_property_is_refused_without_repeating_it() {
    for typo in ["sasl.password:S3cr3t-vAlue-91", "=S3cr3t-vAlue-91"] {
        let args = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", typo];
        assert_refused_without_printing(&args, typo, "a -X is not KEY=VALUE", "S3cr3t");
    }
}

#[cfg(unix)]
#[test]
fn a_properties_file_others_can_read_draws_a_warning() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("client.properties");
    std::fs::write(&file, "sasl.password=x\nnot a property\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run(&["-F", file.to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("can be read by group or others (mode 644)"),
        "{stderr}"
    );
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = run(&["-F", file.to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("can be read by"), "{stderr}");
}

/// `--kafka-config` naming a FIFO whose writer never closes it (or a device): read up to the
/// 4 MiB configuration files may hold, then refused naming the flag and the limit, as
/// `--connector-config` is; not read without end.
#[cfg(unix)]
#[test]
fn a_kafka_config_that_never_ends_is_refused_at_the_limit() {
    use std::io::Write as _;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("client.properties");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    // The writer sends 5 MiB of one long line and keeps the FIFO open until the sink is done.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open the FIFO");
        let chunk = vec![b'a'; 64 << 10];
        for _ in 0..80 {
            if w.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = done_rx.recv();
    });
    let mut child = std::process::Command::new(bin())
        .args(["--brokers", "127.0.0.1:9", "--topic", "t", "--group", "g"])
        .args(["--database", "D", "--schema", "S", "--pipe", "P"])
        .args(["--kafka-config", fifo.to_str().expect("utf-8 path")])
        .env_remove("SNOWFLAKE_PRIVATE_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run snowpipe-kafka");
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = done_tx.send(());
    writer.join().expect("writer");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    let status = status.unwrap_or_else(|| panic!("--kafka-config was read without end:\n{stderr}"));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--kafka-config") && stderr.contains("4 MiB"),
        "{stderr}"
    );
}
