//! The test lab: an emulator with the table `D.S.T`, a key for it, a temporary directory, and
//! the binary run against them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use snowpipe_emulator::{Emulator, EmulatorConfig, KeyPair};

pub(crate) mod kill;
pub(crate) mod moto;

/// The table every test loads into: `ID` and `NAME` columns.
pub(crate) const DDL: &str = "CREATE DATABASE D; CREATE SCHEMA D.S; \
    CREATE TABLE D.S.T (ID NUMBER, NAME VARCHAR, NOTE VARCHAR)";

/// One key pair for every test (RSA generation is slow): (private key file, public key PEM).
fn key() -> &'static (PathBuf, String) {
    static KEY: OnceLock<(PathBuf, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = KeyPair::generate().expect("generate a key pair");
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("snowpipe_load_key.p8");
        snowpipe_emulator::write_private_key(&path, key.private_key_pem()).expect("write key");
        (path, key.public_key_pem().to_owned())
    })
}

/// The lab's private key file (PKCS#8 PEM, 0600), which the emulator trusts.
pub(crate) fn key_file() -> &'static Path {
    &key().0
}

/// An emulator on its own runtime, and a directory for the inputs.
pub(crate) struct Lab {
    pub emulator: Option<Emulator>,
    runtime: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    url: String,
    /// More environment for the binary (an S3 server's endpoint and keys, `moto.rs`).
    pub env: Vec<(String, String)>,
}

impl Lab {
    pub(crate) fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = EmulatorConfig::for_tests().with_ddl(DDL);
        config.public_keys.push(key().1.clone());
        let emulator = runtime
            .block_on(Emulator::start(config))
            .expect("start the emulator");
        let url = emulator.url();
        Self {
            emulator: Some(emulator),
            runtime,
            dir: tempfile::tempdir().unwrap(),
            url,
            env: Vec::new(),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `snowpipe load FILES --database D --schema S --table T ARGS`, connected to the lab.
    pub(crate) fn command(&self, files: &[&Path], args: &[&str]) -> Command {
        self.command_of(Path::new(env!("CARGO_BIN_EXE_snowpipe")), files, args)
    }

    /// [`command`](Self::command) run by `binary` (an earlier release's `snowpipe`).
    pub(crate) fn command_of(&self, binary: &Path, files: &[&Path], args: &[&str]) -> Command {
        let mut cmd = Command::new(binary);
        cmd.arg("load")
            .args(files)
            .args(["--database", "D", "--schema", "S", "--table", "T"])
            .args(args)
            .env("SNOWFLAKE_URL", &self.url)
            .env("SNOWFLAKE_ACCOUNT", "LAB")
            .env("SNOWFLAKE_USER", "LOADER")
            .env("SNOWFLAKE_PRIVATE_KEY_FILE", &key().0)
            .env_remove("SNOWFLAKE_PRIVATE_KEY")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // What the loader writes by default into the working directory (objects' dead
            // letters) stays in the lab.
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs the binary to its end.
    pub(crate) fn load(&self, files: &[&Path], args: &[&str]) -> Run {
        let out = self.command(files, args).output().expect("run snowpipe");
        Run::from(out)
    }

    /// Starts the binary.
    pub(crate) fn spawn(&self, files: &[&Path], args: &[&str]) -> Child {
        let mut cmd = self.command(files, args);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd.spawn().expect("start snowpipe")
    }

    /// The rows of the table, `SELECT cols FROM T ORDER BY ID`.
    pub(crate) fn rows(&self, cols: &str) -> Vec<Vec<serde_json::Value>> {
        let sql = format!(r#"SELECT {cols} FROM "D.S.T" ORDER BY ID"#);
        self.emulator.as_ref().unwrap().query(&sql).expect("query")
    }

    /// `COUNT(*)` of the table.
    pub(crate) fn count(&self) -> u64 {
        let sql = r#"SELECT COUNT(*) FROM "D.S.T""#;
        let r = self.emulator.as_ref().unwrap().query(sql).expect("query");
        r[0][0].as_u64().unwrap()
    }

    /// `(COUNT(*), COUNT(DISTINCT ID))` of the table.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let r = self
            .emulator
            .as_ref()
            .unwrap()
            .query(r#"SELECT COUNT(*), COUNT(DISTINCT ID) FROM "D.S.T""#)
            .expect("query");
        (r[0][0].as_u64().unwrap(), r[0][1].as_u64().unwrap())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(e) = self.emulator.take() {
            self.runtime.block_on(e.shutdown());
        }
    }
}

/// A finished run: exit code, the summary (the last stdout line), stderr.
#[derive(Debug)]
pub(crate) struct Run {
    pub code: Option<i32>,
    pub summary: serde_json::Value,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or("null");
        Self {
            code: out.status.code(),
            summary: serde_json::from_str(last).unwrap_or(serde_json::Value::Null),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts exit 0 and returns the summary.
    pub(crate) fn ok(self) -> serde_json::Value {
        assert_eq!(self.code, Some(0), "{self:#?}");
        assert_eq!(self.summary["ok"], true, "{self:#?}");
        self.summary
    }
}

/// NDJSON rows `{"id": i, "name": "name-i"}` for `ids`.
pub(crate) fn ndjson(ids: impl IntoIterator<Item = u64>) -> String {
    ids.into_iter()
        .map(|i| format!("{{\"id\":{i},\"name\":\"name-{i}\"}}\n"))
        .collect()
}

impl Lab {
    /// A `profile.json` (mode 0600) connecting to the lab with `memory_budget_bytes` set: pass
    /// it as `--profile`.
    pub(crate) fn profile(&self, memory_budget_bytes: usize) -> PathBuf {
        let extra = serde_json::json!({ "memory_budget_bytes": memory_budget_bytes });
        self.profile_at(&self.url, &extra)
    }

    /// The emulator's URL (`http://127.0.0.1:PORT`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A `profile.json` (mode 0600) connecting to `url` (a proxy in front of the lab) with the
    /// lab's key and the keys of `extra` (an object) added: pass it as `--profile`.
    pub(crate) fn profile_at(&self, url: &str, extra: &serde_json::Value) -> PathBuf {
        let path = self.path("profile.json");
        let mut text = serde_json::json!({
            "url": url,
            "account": "LAB",
            "user": "LOADER",
            "private_key_file": key().0.display().to_string(),
        });
        if let (Some(t), Some(e)) = (text.as_object_mut(), extra.as_object()) {
            t.extend(e.clone());
        }
        std::fs::write(&path, text.to_string()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }
}
