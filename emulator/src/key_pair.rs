//! A throwaway RSA key pair for tests and examples: the public half goes to the emulator
//! ([`EmulatorConfig::with_public_key`](crate::config::EmulatorConfig::with_public_key)), the private
//! half to the client that signs its key-pair JWTs with it.

use crate::error::EmulatorError;

/// An RSA-2048 key pair, both halves PEM-encoded. `Debug` never shows the private key.
#[derive(Clone)]
pub struct KeyPair {
    private_key_pem: String,
    public_key_pem: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("private_key_pem", &"<redacted>")
            .field("public_key_pem", &self.public_key_pem)
            .finish()
    }
}

impl KeyPair {
    /// Generates a new key pair (about a tenth of a second).
    ///
    /// # Errors
    /// When the key cannot be generated or encoded.
    pub fn generate() -> Result<Self, EmulatorError> {
        Self::from_rng(&mut rand::rngs::OsRng)
    }

    /// The key pair derived from `seed`: the same seed gives the same pair on every run, so a
    /// test's keys (and their fingerprints) are reproducible. For tests only: anyone who knows
    /// the seed has the private key.
    ///
    /// # Errors
    /// When the key cannot be generated or encoded.
    pub fn from_seed(seed: u64) -> Result<Self, EmulatorError> {
        use rand::SeedableRng;
        Self::from_rng(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed))
    }

    /// An RSA-2048 key pair from `rng`: the one place keys are made.
    fn from_rng(rng: &mut (impl rand::CryptoRng + rand::RngCore)) -> Result<Self, EmulatorError> {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let fail = |what: &str, e: String| {
            EmulatorError::config(format!("cannot {what} a test key pair: {e}"))
        };
        let key =
            rsa::RsaPrivateKey::new(rng, 2048).map_err(|e| fail("generate", e.to_string()))?;
        let private_key_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| fail("encode", e.to_string()))?
            .to_string();
        let public_key_pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| fail("encode", e.to_string()))?;
        Ok(Self {
            private_key_pem,
            public_key_pem,
        })
    }

    /// The private key, PKCS#8 PEM (unencrypted): give it to the client.
    pub fn private_key_pem(&self) -> &str {
        &self.private_key_pem
    }

    /// The public key, SPKI PEM: give it to the emulator.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_is_pem_and_its_debug_hides_the_private_half() {
        let k = KeyPair::generate().unwrap();
        assert!(k
            .private_key_pem()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(k.public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
        let debug = format!("{k:?}");
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains("PRIVATE KEY"));
    }

    #[test]
    fn a_seed_gives_the_same_pair_every_time_and_another_seed_another_pair() {
        let (a, b) = (
            KeyPair::from_seed(7).unwrap(),
            KeyPair::from_seed(7).unwrap(),
        );
        assert_eq!(a.private_key_pem(), b.private_key_pem());
        assert_eq!(a.public_key_pem(), b.public_key_pem());
        let c = KeyPair::from_seed(8).unwrap();
        assert_ne!(a.public_key_pem(), c.public_key_pem());
    }
}
