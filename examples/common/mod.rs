//! What every example needs and nothing in the SDK should: a throwaway key pair for the
//! embedded emulator, the `emulator` subcommand's serve loop, the connection to a real account
//! from `--profile` or `SNOWFLAKE_*`, and waiting for Ctrl-C/SIGTERM.
//!
//! Each example includes it with `#[path = "../common/mod.rs"] mod common;` (an example is
//! one crate; this keeps the scaffolding in one place). Not every example uses every item.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use snowpipe_emulator::{Emulator, EmulatorConfig};
use snowpipe_streaming::ClientBuilder;

/// A fresh RSA key pair: (private key as PKCS#8 PEM, public key as SPKI PEM). The private key
/// is never printed or logged.
///
/// # Errors
/// If key generation or encoding fails.
pub fn generate_key() -> Result<(String, String)> {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
        .context("RSA key generation failed")?;
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("cannot encode the private key")?;
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .context("cannot encode the public key")?;
    Ok((private.to_string(), public))
}

/// Writes a private key readable only by the owner.
///
/// # Errors
/// If the file cannot be written.
pub fn write_private_key(path: &Path, pem: &str) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(pem.as_bytes())?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
///
/// # Cancellation
/// Dropping the future stops listening for the signals.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Whether the user pointed the example at a real account (or an external emulator):
/// `--profile`, or `SNOWFLAKE_ACCOUNT` / `SNOWFLAKE_URL` set.
pub fn external_configured(profile: Option<&Path>) -> bool {
    profile.is_some()
        || ["SNOWFLAKE_ACCOUNT", "SNOWFLAKE_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
}

/// A client builder from `--profile FILE`, else from the `SNOWFLAKE_*` variables.
///
/// # Errors
/// When the profile cannot be read.
pub fn builder_from(profile: Option<&Path>) -> Result<ClientBuilder> {
    match profile {
        Some(path) => ClientBuilder::from_profile_file(path)
            .with_context(|| format!("cannot read connection profile {}", path.display())),
        None => Ok(ClientBuilder::from_env()),
    }
}

/// What to say when connecting to a real account fails.
pub const CONNECT_HINT: &str = "cannot connect: pass --profile profile.json, or set \
     SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and SNOWFLAKE_PRIVATE_KEY_FILE (plus \
     SNOWFLAKE_URL=http://127.0.0.1:PORT for an emulator)";

/// The `emulator` subcommand every example offers: which DDL, keys and storage to serve.
#[derive(Debug, Clone)]
pub struct Serve {
    /// DDL scripts (their text) to load.
    pub ddl: Vec<String>,
    /// Public keys (PEM files) to accept.
    pub public_keys: Vec<PathBuf>,
    /// Generate a key pair, accept its public key and write the private key here.
    pub new_key: Option<PathBuf>,
    /// Where the emulator keeps its SQLite database (in memory when `None`).
    pub data_dir: Option<PathBuf>,
    /// Delay between accepting rows and committing them.
    pub commit_delay: Duration,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Count rows without storing them.
    pub sink: bool,
    /// The service's limits to enforce (`Limits::Snowflake` models the real service's
    /// per-channel rate, channels per pipe and pipes per table).
    pub limits: snowpipe_emulator::Limits,
}

impl Serve {
    /// Starts the emulator (strict offsets: any request whose tokens cannot name its rows is a
    /// bug in the example), prints `listening on URL` (other tools read it) and serves until
    /// Ctrl-C or SIGTERM, then shuts down, committing what it accepted.
    ///
    /// # Errors
    /// When a file cannot be read or written, no key is given, or the emulator cannot start.
    ///
    /// # Cancellation
    /// Dropping the future drops the emulator, which stops serving.
    pub async fn run(self) -> Result<()> {
        let mut public_keys = self
            .public_keys
            .iter()
            .map(|p| {
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read public key {}", p.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(path) = &self.new_key {
            let (private_pem, public_pem) = generate_key()?;
            write_private_key(path, &private_pem)?;
            public_keys.push(public_pem);
        }
        if public_keys.is_empty() {
            bail!(
                "no key to accept: pass --public-key FILE (PEM) or --new-key FILE to generate a \
                 key pair"
            );
        }
        if let Some(dir) = &self.data_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut config = EmulatorConfig::default();
        config.ddl = self.ddl;
        config.public_keys = public_keys;
        config.commit_delay = self.commit_delay;
        config.data_dir = self.data_dir;
        config.port = self.port;
        config.sink = self.sink;
        config.limits = self.limits;
        config.strict_offsets = true;
        let emulator = Emulator::start(config)
            .await
            .context("cannot start the emulator")?;
        println!("listening on {}", emulator.url());
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        terminated().await;
        emulator.shutdown().await;
        Ok(())
    }
}
