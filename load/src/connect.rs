//! The connection: `--profile FILE`, else the `SNOWFLAKE_*` variables when
//! `SNOWFLAKE_ACCOUNT` is set, else (feature `emulator`) an emulator in this process.

use anyhow::{Context, Result};
use snowpipe_streaming::{ClientBuilder, StreamingIngestClient};

use crate::cli::LoadArgs;

/// A connected client, and the embedded emulator it talks to, if any.
pub(crate) struct Connection {
    /// The client.
    pub client: StreamingIngestClient,
    /// The embedded emulator (kept running while the client uses it).
    #[cfg(feature = "emulator")]
    pub emulator: Option<snowpipe_emulator::Emulator>,
}

/// Connects as the module says.
///
/// # Errors
/// When the profile cannot be read, the configuration is incomplete or refused, or the
/// embedded emulator cannot start (its DDL file unreadable or not understood). A refused
/// connection names where its settings came from: the profile passed, or the variables.
pub(crate) async fn connect(args: &LoadArgs) -> Result<Connection> {
    let (builder, from) = match &args.profile {
        Some(path) => (
            ClientBuilder::from_profile_file(path)
                .with_context(|| format!("cannot read connection profile {}", path.display()))?,
            format!(
                "cannot connect with the connection profile {}: check its account, user, url \
                 and private key",
                path.display()
            ),
        ),
        None if std::env::var_os("SNOWFLAKE_ACCOUNT").is_some() => (
            ClientBuilder::from_env(),
            "cannot connect with the SNOWFLAKE_* variables: check SNOWFLAKE_ACCOUNT, \
             SNOWFLAKE_USER, SNOWFLAKE_PRIVATE_KEY_FILE (and SNOWFLAKE_URL if set), or pass \
             --profile FILE"
                .to_owned(),
        ),
        None => return embedded(args).await,
    };
    let client = tuned(builder, args).build().await.context(from)?;
    Ok(Connection {
        client,
        #[cfg(feature = "emulator")]
        emulator: None,
    })
}

/// `builder` with the application name and the command line's client settings.
fn tuned(builder: ClientBuilder, args: &LoadArgs) -> ClientBuilder {
    let builder = builder.application("snowpipe-load");
    match args.max_client_lag {
        Some(lag) => builder.max_client_lag(lag),
        None => builder,
    }
}

#[cfg(not(feature = "emulator"))]
async fn embedded(_: &LoadArgs) -> Result<Connection> {
    anyhow::bail!(
        "cannot connect: pass --profile FILE (profile.json or connections.toml), or set \
         SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and SNOWFLAKE_PRIVATE_KEY_FILE (this build has no \
         embedded emulator)"
    )
}

#[cfg(feature = "emulator")]
async fn embedded(args: &LoadArgs) -> Result<Connection> {
    use snowpipe_emulator::{Emulator, EmulatorConfig};
    let mut config = EmulatorConfig::for_tests();
    if let Some(ddl) = &args.emulator_ddl {
        let sql = match ddl.strip_prefix('@') {
            // Read as the emulator reads its own `--ddl`: within 64 MiB, never a device or a
            // FIFO whole nor waited on without end.
            Some(path) => {
                let bytes = snowpipe_emulator::option_file::read(
                    std::path::Path::new(path),
                    "DDL",
                    snowpipe_emulator::option_file::MAX_DDL_FILE_BYTES,
                )
                .with_context(|| format!("cannot read --emulator-ddl file {path}"))?;
                String::from_utf8(bytes)
                    .with_context(|| format!("--emulator-ddl file {path} is not UTF-8 text"))?
            }
            None => ddl.clone(),
        };
        config.ddl.push(sql);
    }
    if let Some(dir) = &args.emulator_data_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        config.data_dir = Some(dir.clone());
    }
    let (emulator, key) = Emulator::start_with_new_key(config)
        .await
        .context("cannot start the embedded emulator (check --emulator-ddl)")?;
    let place = args
        .emulator_data_dir
        .as_ref()
        .map_or_else(|| "in memory".to_owned(), |d| format!("in {}", d.display()));
    snowpipe_cli_support::log::notice(
        tracing::Level::INFO,
        "snowpipe_load",
        &format!(
            "snowpipe load: no account configured (--profile, SNOWFLAKE_ACCOUNT): loading into \
             an embedded emulator at {}, tables {place}",
            emulator.url()
        ),
    );
    let builder = ClientBuilder::new()
        .account("EMULATOR")
        .user("SNOWPIPE_LOAD")
        .url(emulator.url())
        .private_key_pem(key.private_key_pem());
    let client = tuned(builder, args)
        .build()
        .await
        .context("cannot connect to the embedded emulator")?;
    Ok(Connection {
        client,
        emulator: Some(emulator),
    })
}
