//! An RSA key pair: throwaway ones for tests and examples (the public half goes to the
//! emulator, [`EmulatorConfig::with_public_key`](crate::config::EmulatorConfig::with_public_key),
//! the private half to the client that signs its key-pair JWTs with it), and the files
//! `snowpipe-emulator keygen` writes for a real account ([`KeyFiles::write`]): `rsa_key.p8`
//! (PKCS#8 PEM, mode 0600, optionally encrypted) and `rsa_key.pub`, with the
//! `ALTER USER … SET RSA_PUBLIC_KEY` statement that registers the public half and its
//! `SHA256:` fingerprint, as Snowflake's key-pair guide makes them with openssl
//! (docs/snowflake-setup.md).

use crate::base::error::EmulatorError;

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

/// The environment variable `snowpipe-emulator keygen --encrypt` reads the passphrase from
/// (never a flag: a command line is visible to other users). The SDK reads the same variable
/// to unlock the key.
pub const PASSPHRASE_VAR: &str = "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE";

/// PBKDF2-HMAC-SHA256 rounds of an encrypted key (OWASP's figure for PBKDF2-SHA256).
const PBKDF2_ROUNDS: u32 = 600_000;

impl KeyPair {
    /// The public key's fingerprint as Snowflake shows it in `DESC USER`'s
    /// `RSA_PUBLIC_KEY_FP`: `SHA256:` and the base64 SHA-256 of the DER SubjectPublicKeyInfo.
    ///
    /// # Errors
    /// When the public key cannot be read back (never for a generated pair).
    pub fn fingerprint(&self) -> Result<String, EmulatorError> {
        crate::security::auth::public_key_fingerprint(&self.public_key_pem)
            .map_err(|e| EmulatorError::config(format!("cannot read the public key: {e}")))
    }

    /// The public key as `RSA_PUBLIC_KEY` takes it: the PEM's base64 body on one line, without
    /// the BEGIN/END lines.
    pub fn public_key_value(&self) -> String {
        self.public_key_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect()
    }

    /// `ALTER USER <user> SET RSA_PUBLIC_KEY='<key>';`: the statement that registers the public
    /// half with `user` (quoted when it is not a plain identifier).
    pub fn alter_user_statement(&self, user: &str) -> String {
        format!(
            "ALTER USER {} SET RSA_PUBLIC_KEY='{}';",
            sql_identifier(user),
            self.public_key_value()
        )
    }

    /// The private key as encrypted PKCS#8 PEM (`BEGIN ENCRYPTED PRIVATE KEY`): PBES2 with
    /// PBKDF2-HMAC-SHA256 and AES-256-CBC, the scheme `openssl pkcs8 -topk8 -v2 aes256` writes,
    /// which Snowflake's drivers and this workspace's SDK read.
    ///
    /// # Errors
    /// When `passphrase` is empty or the key cannot be encrypted.
    pub fn encrypted_private_key_pem(&self, passphrase: &str) -> Result<String, EmulatorError> {
        use rand::RngCore as _;
        use rsa::pkcs8::der::Decode as _;
        if passphrase.is_empty() {
            return Err(EmulatorError::config(format!(
                "the passphrase is empty: set {PASSPHRASE_VAR} to a passphrase"
            )));
        }
        let fail = |e: String| EmulatorError::config(format!("cannot encrypt the key: {e}"));
        let (_, doc) = pkcs8::SecretDocument::from_pem(&self.private_key_pem)
            .map_err(|e| fail(e.to_string()))?;
        let info =
            pkcs8::PrivateKeyInfo::from_der(doc.as_bytes()).map_err(|e| fail(e.to_string()))?;
        let (mut salt, mut iv) = ([0u8; 16], [0u8; 16]);
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let params =
            pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ROUNDS, &salt, &iv)
                .map_err(|e| fail(e.to_string()))?;
        let encrypted = info
            .encrypt_with_params(params, passphrase.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        encrypted
            .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| fail(e.to_string()))
    }
}

/// `name` as a SQL identifier: as it is when it is a plain one (letters, digits, `_`, `$`, not
/// starting with a digit), else double-quoted.
fn sql_identifier(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// What `snowpipe-emulator keygen` wrote: the two files, and what to register with Snowflake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    /// `rsa_key.p8`: the private key, PKCS#8 PEM, mode 0600.
    pub private_key: std::path::PathBuf,
    /// `rsa_key.pub`: the public key, PEM (SubjectPublicKeyInfo).
    pub public_key: std::path::PathBuf,
    /// Whether the private key is encrypted with a passphrase.
    pub encrypted: bool,
    /// `SHA256:…`, as `DESC USER` shows `RSA_PUBLIC_KEY_FP` once the key is registered.
    pub fingerprint: String,
    /// `ALTER USER <user> SET RSA_PUBLIC_KEY='…';`.
    pub alter_user: String,
}

impl KeyFiles {
    /// The private key's file name.
    pub const PRIVATE_KEY: &'static str = "rsa_key.p8";
    /// The public key's file name.
    pub const PUBLIC_KEY: &'static str = "rsa_key.pub";

    /// An error naming the first of the two files that exists in `dir`.
    fn refuse_existing(dir: &std::path::Path) -> Result<(), EmulatorError> {
        for name in [Self::PRIVATE_KEY, Self::PUBLIC_KEY] {
            let path = dir.join(name);
            if path.exists() {
                return Err(EmulatorError::io(format!(
                    "{} exists: keygen never replaces a key (the user it is registered with \
                     would be locked out). Move it away, or pass --out with another directory",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Writes `key` into `dir` (created, mode 0700, when missing) as [`Self::PRIVATE_KEY`]
    /// (mode 0600; encrypted when a `passphrase` is given) and [`Self::PUBLIC_KEY`], and
    /// returns what registers it with `user`. Refuses to replace either file.
    ///
    /// # Errors
    /// When either file exists (nothing is written then), the directory or a file cannot be
    /// created, or the key cannot be encrypted.
    pub fn write(
        dir: &std::path::Path,
        key: &KeyPair,
        user: &str,
        passphrase: Option<&str>,
    ) -> Result<Self, EmulatorError> {
        Self::refuse_existing(dir)?;
        let private_key = dir.join(Self::PRIVATE_KEY);
        let public_key = dir.join(Self::PUBLIC_KEY);
        let private_pem = match passphrase {
            Some(p) => zeroize::Zeroizing::new(key.encrypted_private_key_pem(p)?),
            None => zeroize::Zeroizing::new(key.private_key_pem().to_owned()),
        };
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(|e| {
            EmulatorError::io(format!("cannot create {}", dir.display())).with_source(e)
        })?;
        let io = |path: &std::path::Path, e: std::io::Error| {
            EmulatorError::io(format!("cannot write {}", path.display())).with_source(e)
        };
        write_new(&private_key, private_pem.as_bytes(), 0o600).map_err(|e| io(&private_key, e))?;
        if let Err(e) = write_new(&public_key, key.public_key_pem().as_bytes(), 0o644) {
            // Both or neither: a private key whose public half was not written is of no use.
            let _ = std::fs::remove_file(&private_key);
            return Err(io(&public_key, e));
        }
        Ok(Self {
            private_key,
            public_key,
            encrypted: passphrase.is_some(),
            fingerprint: key.fingerprint()?,
            alter_user: key.alter_user_statement(user),
        })
    }
}

impl KeyFiles {
    /// `snowpipe-emulator keygen`: a new key pair written into `dir` ([`KeyFiles::write`]),
    /// encrypted with the passphrase in the [`PASSPHRASE_VAR`] environment variable when
    /// `encrypt`, registered with `user` by the statement it returns.
    ///
    /// # Errors
    /// `encrypt` without the variable (or with it empty), and what [`KeyFiles::write`]
    /// refuses.
    pub fn generate(
        dir: &std::path::Path,
        user: &str,
        encrypt: bool,
    ) -> Result<Self, EmulatorError> {
        let passphrase = if encrypt {
            let p = std::env::var(PASSPHRASE_VAR)
                .ok()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    EmulatorError::config(format!(
                        "--encrypt takes the passphrase from {PASSPHRASE_VAR} (never from the \
                         command line, which other users can see): set it, e.g. `read -rs \
                         {PASSPHRASE_VAR} && export {PASSPHRASE_VAR}`"
                    ))
                })?;
            Some(zeroize::Zeroizing::new(p))
        } else {
            None
        };
        // Before the slow part, generating the key.
        Self::refuse_existing(dir)?;
        Self::write(
            dir,
            &KeyPair::generate()?,
            user,
            passphrase.as_deref().map(|p| p.as_str()),
        )
    }
}

impl std::fmt::Display for KeyFiles {
    /// What `snowpipe-emulator keygen` prints: the files, the fingerprint, and the statement
    /// on a line of its own.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let encrypted = if self.encrypted {
            format!(", encrypted with the passphrase in ${PASSPHRASE_VAR}")
        } else {
            String::new()
        };
        writeln!(
            f,
            "wrote {} (private key, PKCS#8 PEM, mode 0600{encrypted})",
            self.private_key.display()
        )?;
        writeln!(f, "wrote {} (public key)", self.public_key.display())?;
        writeln!(
            f,
            "public key fingerprint: {} (DESC USER shows it as RSA_PUBLIC_KEY_FP once the key \
             is registered)",
            self.fingerprint
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "Register the public key with the user (as a role that may alter it, e.g. \
             SECURITYADMIN):"
        )?;
        writeln!(f)?;
        writeln!(f, "{}", self.alter_user)
    }
}

/// Creates `path` (never over an existing file) with `mode` (Unix) and writes `bytes`.
fn write_new(path: &std::path::Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
    #[cfg(not(unix))]
    let _ = mode;
    o.open(path)?.write_all(bytes)
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
    fn the_statement_and_fingerprint_are_what_snowflake_takes_and_shows() {
        let k = KeyPair::from_seed(11).unwrap();
        let value = k.public_key_value();
        assert!(
            value.starts_with("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
            "{value}"
        );
        assert!(!value.contains(['\n', '-', ' ']));
        // The body is the PEM's: wrapped at 64 columns it is the PEM again.
        let rewrapped: Vec<String> = value
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        assert_eq!(
            format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                rewrapped.join("\n")
            ),
            k.public_key_pem()
        );
        assert_eq!(
            k.alter_user_statement("SNOWPIPE_INGEST"),
            format!("ALTER USER SNOWPIPE_INGEST SET RSA_PUBLIC_KEY='{value}';")
        );
        assert!(k
            .alter_user_statement("ingest.bot \"x\"")
            .starts_with("ALTER USER \"ingest.bot \"\"x\"\"\" SET"));
        let fp = k.fingerprint().unwrap();
        // SHA-256 is 32 bytes: 44 base64 characters with their padding.
        assert!(
            fp.starts_with("SHA256:") && fp.len() == 7 + 44 && fp.ends_with('='),
            "{fp}"
        );
        assert_eq!(fp, KeyPair::from_seed(11).unwrap().fingerprint().unwrap());
        assert_ne!(fp, KeyPair::from_seed(12).unwrap().fingerprint().unwrap());
    }

    #[test]
    fn an_encrypted_key_opens_with_its_passphrase_only() {
        use pkcs8::der::Decode as _;
        let k = KeyPair::from_seed(13).unwrap();
        let pem = k.encrypted_private_key_pem("correct horse").unwrap();
        assert!(
            pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
            "{pem}"
        );
        let (_, doc) = pkcs8::Document::from_pem(&pem).unwrap();
        let info = pkcs8::EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).unwrap();
        let pbes2 = info.encryption_algorithm.pbes2().unwrap();
        assert!(pbes2.kdf.is_pbkdf2() && pbes2.encryption.key_size() == 32);
        let plain = info.decrypt("correct horse").unwrap();
        let (_, original) = pkcs8::SecretDocument::from_pem(k.private_key_pem()).unwrap();
        assert_eq!(plain.as_bytes(), original.as_bytes());
        assert!(info.decrypt("wrong horse").is_err());
        let e = k.encrypted_private_key_pem("").unwrap_err().to_string();
        assert!(e.contains(PASSPHRASE_VAR), "{e}");
    }

    #[test]
    fn keygen_files_are_written_once_with_their_modes_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("keys");
        let k = KeyPair::from_seed(14).unwrap();
        let files = KeyFiles::write(&out, &k, "SNOWPIPE_INGEST", None).unwrap();
        assert_eq!(files.private_key, out.join("rsa_key.p8"));
        assert_eq!(files.public_key, out.join("rsa_key.pub"));
        assert!(!files.encrypted);
        assert_eq!(files.fingerprint, k.fingerprint().unwrap());
        assert_eq!(files.alter_user, k.alter_user_statement("SNOWPIPE_INGEST"));
        assert_eq!(
            std::fs::read_to_string(&files.private_key).unwrap(),
            k.private_key_pem()
        );
        assert_eq!(
            std::fs::read_to_string(&files.public_key).unwrap(),
            k.public_key_pem()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode(&files.private_key) & 0o777, 0o600);
            assert_eq!(mode(&out) & 0o777, 0o700);
        }
        // A second run refuses, naming the file, and leaves both as they were.
        let other = KeyPair::from_seed(15).unwrap();
        let e = KeyFiles::write(&out, &other, "SNOWPIPE_INGEST", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rsa_key.p8 exists"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&files.private_key).unwrap(),
            k.private_key_pem()
        );
        // Only the public half left over: refused too, the private half not written.
        std::fs::remove_file(&files.private_key).unwrap();
        let e = KeyFiles::write(&out, &other, "SNOWPIPE_INGEST", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rsa_key.pub exists"), "{e}");
        assert!(!files.private_key.exists());
        // Encrypted.
        let enc = dir.path().join("enc");
        let files = KeyFiles::write(&enc, &k, "U", Some("pass phrase")).unwrap();
        assert!(files.encrypted);
        assert!(std::fs::read_to_string(&files.private_key)
            .unwrap()
            .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
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
