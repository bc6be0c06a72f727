//! An emulator with a key pair registered: the one way the workspace's tests, examples and
//! applications start an embedded emulator that a client signs in to.
//!
//! [`Emulator::start_with_new_key`] generates a throwaway [`KeyPair`], registers its public half
//! in the configuration it is given (every other setting — DDL, data directory, TLS, limits,
//! faults — is the caller's) and starts the emulator; it hands back the running emulator and
//! the key, so a client is pointed at it in one line:
//!
//! ```no_run
//! # async fn demo() -> Result<(), snowpipe_emulator::EmulatorError> {
//! use snowpipe_emulator::{Emulator, EmulatorConfig};
//! let config = EmulatorConfig::for_tests().with_ddl("CREATE DATABASE D; CREATE SCHEMA D.S;");
//! let (emulator, key) = Emulator::start_with_new_key(config).await?;
//! // a client: url `emulator.url()`, any account and user, key `key.private_key_pem()`
//! # let _ = key;
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! [`Emulator::start_with_key`] does the same with a key the caller made (a seeded one,
//! [`KeyPair::from_seed`], for reproducible runs).
//!
//! The key is generated on Tokio's blocking pool (an RSA-2048 key takes about a tenth of a
//! second, more in a debug build), so the runtime's other tasks keep running meanwhile.

use crate::{Emulator, EmulatorConfig, EmulatorError, KeyPair};

impl Emulator {
    /// Generates a key pair, adds its public key to `config`'s accepted keys and starts the
    /// emulator ([`Emulator::start`]). Returns the running emulator and the key pair: give
    /// its [`private_key_pem`](KeyPair::private_key_pem) to the client, with any account and
    /// user.
    ///
    /// # Errors
    /// When the key cannot be generated, or as [`Emulator::start`].
    ///
    /// # Cancellation
    /// Dropping the future before it completes leaves nothing running (a key being generated
    /// is finished and discarded).
    pub async fn start_with_new_key(
        config: EmulatorConfig,
    ) -> Result<(Emulator, KeyPair), EmulatorError> {
        let key = tokio::task::spawn_blocking(KeyPair::generate)
            .await
            .map_err(|e| {
                EmulatorError::config(format!("cannot generate a test key pair: {e}"))
            })??;
        Self::start_with_key(config, key).await
    }

    /// Adds `key`'s public key to `config`'s accepted keys and starts the emulator
    /// ([`Emulator::start`]). Returns the running emulator and `key`.
    ///
    /// # Errors
    /// As [`Emulator::start`].
    ///
    /// # Cancellation
    /// Dropping the future before it completes leaves nothing running.
    pub async fn start_with_key(
        config: EmulatorConfig,
        key: KeyPair,
    ) -> Result<(Emulator, KeyPair), EmulatorError> {
        let emulator = Emulator::start(config.with_public_key(key.public_key_pem())).await?;
        Ok((emulator, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::auth::test_keys::jwt;

    /// The status of exchanging a key-pair JWT signed with `key` at `/oauth/token`.
    async fn exchange(emulator: &Emulator, key: &KeyPair) -> u16 {
        let token = jwt(
            key.private_key_pem(),
            key.public_key_pem(),
            "ACME",
            "BOB",
            true,
        );
        reqwest::Client::new()
            .post(format!("{}/oauth/token", emulator.url()))
            .bearer_auth(token)
            .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn the_returned_key_signs_in_beside_the_configured_ones() {
        let (configured, stranger) = (
            KeyPair::from_seed(7).unwrap(),
            KeyPair::from_seed(8).unwrap(),
        );
        let config = EmulatorConfig::for_tests().with_public_key(configured.public_key_pem());
        let (emulator, key) = Emulator::start_with_new_key(config).await.unwrap();
        assert_eq!(exchange(&emulator, &key).await, 200);
        assert_eq!(exchange(&emulator, &configured).await, 200);
        assert_ne!(exchange(&emulator, &stranger).await, 200);
        emulator.shutdown().await;
    }
}
