//! `snowpipe-emulator keygen`: the files it writes, what it prints, that it never replaces a
//! key, that `--encrypt` takes the passphrase from the environment only, and that the key
//! it makes is one the emulator accepts once the printed statement registers it.

use std::path::Path;
use std::process::{Command, Output};

fn keygen(args: &[&str], passphrase: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snowpipe-emulator"));
    c.arg("keygen").args(args);
    c.env_remove("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE");
    if let Some(p) = passphrase {
        c.env("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", p);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn keygen_writes_the_pair_and_prints_the_statement_and_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let o = keygen(&["--out", out.to_str().unwrap(), "--user", "LOADER"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    let private = std::fs::read_to_string(out.join("rsa_key.p8")).unwrap();
    let public = std::fs::read_to_string(out.join("rsa_key.pub")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(out.join("rsa_key.p8"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The statement: alone on its line, the public key's body as the value.
    let body: String = public.lines().filter(|l| !l.starts_with("-----")).collect();
    let statement = format!("ALTER USER LOADER SET RSA_PUBLIC_KEY='{body}';");
    assert!(stdout.lines().any(|l| l == statement), "{stdout}");
    // The fingerprint: the emulator's own, of the same public key.
    let fp = snowpipe_emulator::public_key_fingerprint(&public).unwrap();
    assert!(
        stdout.contains(&format!("public key fingerprint: {fp} ")),
        "{stdout}"
    );
    assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");

    // Never over an existing key: refused, naming it, and the files unchanged.
    let again = keygen(&["--out", out.to_str().unwrap()], None);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("rsa_key.p8 exists"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("rsa_key.p8")).unwrap(),
        private
    );
}

#[test]
fn encrypt_takes_the_passphrase_from_the_environment_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = keygen(&["--out", out, "--encrypt"], None);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"), "{e}");
    assert!(!Path::new(out).join("rsa_key.p8").exists());
    let o = keygen(&["--out", out, "--encrypt"], Some("a long passphrase"));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let private = std::fs::read_to_string(Path::new(out).join("rsa_key.p8")).unwrap();
    assert!(private.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    assert!(text(&o.stdout)
        .contains("encrypted with the passphrase in $SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"));
    assert!(!text(&o.stdout).contains("a long passphrase"));
    // The passphrase is not a flag.
    let o = keygen(&["--out", out, "--passphrase", "x"], None);
    assert!(!o.status.success());
}
