//! The local emulator with a client already pointed at it, for tests and examples (feature
//! `emulator`): one call starts [`snowpipe_emulator`] on a free loopback port with a freshly
//! generated key pair registered, and returns a [`ClientBuilder`] that signs in with it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use snowpipe_streaming::emulator::{self, EmulatorConfig};
//!
//! let config = EmulatorConfig::for_tests().with_ddl(
//!     "CREATE DATABASE DB; CREATE SCHEMA DB.S; CREATE TABLE DB.S.T (ID NUMBER)",
//! );
//! let (emulator, builder) = emulator::start(config).await?;
//! let client = builder.build().await?;
//! let channel = client.table_pipe("DB", "S", "T").open_channel("c").await?;
//! # let _ = (emulator, channel);
//! # Ok(()) }
//! ```
//!
//! The emulator keeps serving until the [`Emulator`] is dropped or shut down; query what
//! landed with [`Emulator::query`].

pub use snowpipe_emulator::{Emulator, EmulatorConfig, EmulatorError, KeyPair};

use crate::ClientBuilder;

/// The account name the returned builder uses (the emulator accepts any).
pub const ACCOUNT: &str = "EMULATOR";

/// The user name the returned builder uses (the generated key is accepted for any user).
pub const USER: &str = "TEST";

/// Starts an emulator from `config` with a newly generated key pair added to its accepted
/// public keys, and returns it with a client builder (account [`ACCOUNT`], user [`USER`],
/// the emulator's URL, the private key). `config.port` 0 (the default) picks a free port.
///
/// # Errors
/// When the key cannot be generated or the emulator cannot start (bad DDL, a port in use).
///
/// # Cancellation
/// Dropping the future before it completes stops the emulator it was starting.
pub async fn start(mut config: EmulatorConfig) -> Result<(Emulator, ClientBuilder), EmulatorError> {
    let key = KeyPair::generate()?;
    config.public_keys.push(key.public_key_pem().to_owned());
    let emulator = Emulator::start(config).await?;
    let builder = ClientBuilder::new()
        .account(ACCOUNT)
        .user(USER)
        .url(emulator.url())
        .private_key_pem(key.private_key_pem());
    Ok((emulator, builder))
}
