//! The emulator side: the `emulator` subcommand, key generation, and reading the emulator's
//! tables for the report.

use std::path::Path;

use anyhow::{bail, Context, Result};
use snowpipe_emulator::{Emulator, EmulatorConfig};

/// The Snowflake setup: the embedded emulator declares its catalog from it.
pub const SETUP_SQL: &str = include_str!("sql/setup.sql");

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

/// `ski_resort emulator`: the emulator library with the pipeline's defaults (DDL from
/// `sql/setup.sql`); prints `listening on URL` and serves until Ctrl-C or SIGTERM.
///
/// # Errors
/// When a file cannot be read or written, no key is given, or the emulator cannot start.
///
/// # Cancellation
/// Dropping the future drops the emulator, which stops serving.
pub async fn emulator(args: crate::cli::EmulatorArgs) -> Result<()> {
    let ddl = if args.ddl.is_empty() {
        vec![SETUP_SQL.to_string()]
    } else {
        args.ddl
            .iter()
            .map(|p| {
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read DDL {}", p.display()))
            })
            .collect::<Result<_>>()?
    };
    let mut public_keys = args
        .public_key
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read public key {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(path) = &args.new_key {
        let (private_pem, public_pem) = generate_key()?;
        write_private_key(path, &private_pem)?;
        public_keys.push(public_pem);
    }
    if public_keys.is_empty() {
        bail!("no key to accept: pass --public-key FILE (PEM) or --new-key FILE to generate a key pair");
    }
    if let Some(dir) = &args.data_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut config = EmulatorConfig::default();
    config.ddl = ddl;
    config.public_keys = public_keys;
    config.commit_delay = args.commit_delay;
    config.data_dir = args.data_dir.clone();
    config.port = args.port;
    // Queue ids are per-row tokens: any request whose tokens cannot name its rows is a bug.
    config.strict_offsets = true;
    // Snowflake's per-channel rate, channel and pipe limits, as the real service.
    config.limits = snowpipe_emulator::Limits::Snowflake;
    let emulator = Emulator::start(config)
        .await
        .context("cannot start the emulator")?;
    println!("listening on {}", emulator.url());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    wait_for_termination().await;
    emulator.shutdown().await;
    Ok(())
}

/// Writes a private key readable only by the owner.
fn write_private_key(path: &Path, pem: &str) -> Result<()> {
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
async fn wait_for_termination() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Opens the emulator's SQLite database in `data_dir` read-only.
///
/// # Errors
/// If the directory holds no emulator database.
pub fn open_emulator_db(data_dir: &Path) -> Result<rusqlite::Connection> {
    snowpipe_emulator::storage::open_read_only(data_dir).with_context(|| {
        format!(
            "cannot open the emulator database in {}",
            data_dir.display()
        )
    })
}
