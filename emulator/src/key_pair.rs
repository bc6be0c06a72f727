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

/// Writes a private key `pem` to `path` readable by its owner only: created with mode 0600, and
/// an existing file is tightened to 0600 before the key is written into it (on Unix; the SDK
/// warns about a key file others can read).
///
/// # Errors
/// When the file cannot be opened, its mode set or the key written.
pub fn write_private_key(path: &std::path::Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut file = o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(pem.as_bytes())
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

    #[cfg(unix)]
    #[test]
    fn a_written_key_is_the_owners_alone_also_over_a_file_others_could_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let k = KeyPair::from_seed(3).unwrap();
        let fresh = dir.path().join("fresh.p8");
        write_private_key(&fresh, k.private_key_pem()).unwrap();
        let open = dir.path().join("open.p8");
        std::fs::write(
            &open,
            "an older, longer file than the key it will hold ".repeat(100),
        )
        .unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private_key(&open, k.private_key_pem()).unwrap();
        for path in [fresh, open] {
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o600,
                "{}",
                path.display()
            );
            assert_eq!(std::fs::read_to_string(&path).unwrap(), k.private_key_pem());
        }
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
