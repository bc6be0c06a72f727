//! Loading the RSA private key for key-pair authentication, and its public-key fingerprint.
//!
//! Accepted forms (docs/protocol-wire.md §2.1): PKCS#8 PEM (`BEGIN PRIVATE KEY`), encrypted PKCS#8 PEM
//! (`BEGIN ENCRYPTED PRIVATE KEY`, PBES2, with a passphrase), and — as a convenience — PKCS#1
//! (`BEGIN RSA PRIVATE KEY`). The PEM header and footer are optional for inline keys: a bare
//! base64 body is accepted, as the official SDK does.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use pkcs8::der::Decode as _;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
use sha2::Digest as _;

use crate::auth::Secret;
use crate::error::Error;
use crate::Result;

/// OID of `rsaEncryption` (1.2.840.113549.1.1.1).
const RSA_ENCRYPTION_OID: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// DER of the OIDs of `des-ede3-cbc` (1.2.840.113549.3.7) and `desCBC` (1.3.14.3.2.7), the
/// ciphers `openssl pkcs8 -v2 des3` (the encrypted-key example of Snowflake's key-pair guide)
/// and `-v2 des` write. The pkcs8 crate reads PBES2 with AES only.
const DES_OIDS: [&[u8]; 2] = [
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07],
    &[0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x07],
];

/// The error for a key encrypted with DES: what it is and how to re-encrypt it.
const DES_UNSUPPORTED: &str = "the key is encrypted with DES (openssl pkcs8 -v2 des3, the \
     example in Snowflake's key-pair guide), which this client does not read: re-encrypt it with \
     AES: openssl pkcs8 -topk8 -v2 aes256 -in rsa_key.p8 -out rsa_key_aes.p8 (it asks for the \
     old passphrase, then the new one)";

/// Whether an encrypted key's DER names a DES cipher.
fn uses_des(der: &[u8]) -> bool {
    DES_OIDS
        .iter()
        .any(|oid| memchr::memmem::find(der, oid).is_some())
}

/// Where the key came from, to name the right setting in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// Inline PEM (`private_key` / `SNOWFLAKE_PRIVATE_KEY`).
    Inline,
    /// A file (`private_key_file` / `SNOWFLAKE_PRIVATE_KEY_FILE`).
    File,
}

impl KeySource {
    fn setting(self) -> &'static str {
        match self {
            Self::Inline => "private_key",
            Self::File => "private_key_file",
        }
    }
}

/// A parsed RSA private key, ready to sign JWTs. `Debug` shows only the fingerprint.
pub(crate) struct KeyPair {
    /// PKCS#1 DER of the private key, as `jsonwebtoken` wants it.
    encoding_key: jsonwebtoken::EncodingKey,
    /// `SHA256:` fingerprint body: base64 (standard, padded) of SHA-256 over the SPKI DER.
    fingerprint: String,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Reads and parses a key file.
    ///
    /// # Errors
    /// [`Error::Config`] naming `private_key_file` (or `private_key_passphrase`) and the file's
    /// path when the file cannot be read or parsed.
    pub(crate) fn from_file(path: &Path, passphrase: Option<&Secret>) -> Result<Self> {
        let text = crate::secret::read_secret_file(path, "private key").map_err(|e| {
            Error::config_caused(
                "private_key_file",
                format!(
                    "cannot read the private key file {}: check the path and its permissions",
                    path.display()
                ),
                e,
            )
        })?;
        // Which file: a profile may name one key file, the environment another.
        Self::from_pem(&text, passphrase, KeySource::File)
            .map_err(|e| e.config_prefixed(&format!("the private key file {}", path.display())))
    }

    /// Parses a PEM key (header and footer optional).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key setting (or `private_key_passphrase`) with what is
    /// wrong: malformed PEM, encrypted key without passphrase, wrong passphrase, not RSA.
    pub(crate) fn from_pem(
        pem: &str,
        passphrase: Option<&Secret>,
        source: KeySource,
    ) -> Result<Self> {
        let setting = source.setting();
        let (label, der) = decode_pem(pem).map_err(|message| Error::config(setting, message))?;
        let der = zeroize::Zeroizing::new(der);
        let private = match label.as_str() {
            "PRIVATE KEY" => rsa_from_pkcs8(&der, setting)?,
            "RSA PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs1_der(&der)
                .map_err(|e| Error::config_caused(setting, "the PKCS#1 RSA key is malformed", e))?,
            "ENCRYPTED PRIVATE KEY" => {
                let Some(passphrase) = passphrase else {
                    return Err(Error::config(
                        "private_key_passphrase",
                        "the private key is encrypted: set private_key_passphrase \
                         (SNOWFLAKE_PRIVATE_KEY_PASSPHRASE)",
                    ));
                };
                let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| {
                    if uses_des(&der) {
                        return Error::config(setting, DES_UNSUPPORTED);
                    }
                    Error::config_caused(setting, "the encrypted PKCS#8 key is malformed", e)
                })?;
                let doc = info.decrypt(passphrase.expose().as_bytes()).map_err(|_| {
                    Error::config(
                        "private_key_passphrase",
                        "cannot decrypt the private key: the passphrase is wrong (or the key \
                         uses an unsupported cipher; PBES2 with AES is supported)",
                    )
                })?;
                rsa_from_pkcs8(doc.as_bytes(), setting)?
            }
            other => {
                return Err(Error::config(
                    setting,
                    format!(
                        "expected a PKCS#8 private key (BEGIN PRIVATE KEY or BEGIN ENCRYPTED \
                         PRIVATE KEY), found BEGIN {other}"
                    ),
                ))
            }
        };
        Self::from_rsa(&private)
    }

    /// Wraps a parsed RSA key.
    pub(crate) fn from_rsa(private: &rsa::RsaPrivateKey) -> Result<Self> {
        let spki = private
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| Error::config_caused("private_key", "cannot encode the public key", e))?;
        let fingerprint =
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(spki.as_bytes()));
        let pkcs1 = private
            .to_pkcs1_der()
            .map_err(|e| Error::config_caused("private_key", "cannot encode the private key", e))?;
        Ok(Self {
            encoding_key: jsonwebtoken::EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            fingerprint,
        })
    }

    /// The public key fingerprint (base64 of SHA-256 over the SPKI DER), the value of
    /// `RSA_PUBLIC_KEY_FP` in `DESC USER`. Not secret.
    pub(crate) fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub(crate) fn encoding_key(&self) -> &jsonwebtoken::EncodingKey {
        &self.encoding_key
    }
}

fn rsa_from_pkcs8(der: &[u8], setting: &str) -> Result<rsa::RsaPrivateKey> {
    let info = pkcs8::PrivateKeyInfo::from_der(der)
        .map_err(|e| Error::config_caused(setting, "the PKCS#8 private key is malformed", e))?;
    if info.algorithm.oid != RSA_ENCRYPTION_OID {
        return Err(Error::config(
            setting,
            format!(
                "the private key is not an RSA key (algorithm {}); Snowflake key-pair \
                 authentication needs an RSA key (openssl genrsa 2048 | openssl pkcs8 -topk8)",
                info.algorithm.oid
            ),
        ));
    }
    rsa::RsaPrivateKey::from_pkcs8_der(der)
        .map_err(|e| Error::config_caused(setting, "the RSA private key is malformed", e))
}

/// Decodes PEM (or a bare base64 body) into (label, DER). Errors are messages without key
/// material.
fn decode_pem(text: &str) -> std::result::Result<(String, Vec<u8>), String> {
    // Keys passed through env vars or JSON often carry literal `\n` escapes.
    let unescaped: zeroize::Zeroizing<String>;
    let text = if !text.contains('\n') && text.contains("\\n") {
        unescaped = zeroize::Zeroizing::new(text.replace("\\n", "\n"));
        unescaped.as_str()
    } else {
        text
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("the private key is empty".into());
    }
    if trimmed.contains("-----BEGIN") {
        // Normalise line endings and stray indentation, which pem-rfc7468 is strict about.
        let normalised: zeroize::Zeroizing<String> = trimmed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
            .into();
        let (label, der) = pkcs8::der::pem::decode_vec(normalised.as_bytes())
            .map_err(|e| format!("the private key is not valid PEM ({e})"))?;
        return Ok((label.to_owned(), der));
    }
    // No header/footer: a bare base64 body. Work out which structure it is.
    let body: zeroize::Zeroizing<String> = trimmed
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .into();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| {
            "the private key is neither PEM nor base64: give the PKCS#8 PEM text \
             (-----BEGIN PRIVATE KEY----- ...)"
                .to_owned()
        })?;
    let label = if pkcs8::PrivateKeyInfo::from_der(&der).is_ok() {
        "PRIVATE KEY"
    } else if pkcs8::EncryptedPrivateKeyInfo::from_der(&der).is_ok() {
        "ENCRYPTED PRIVATE KEY"
    } else if rsa::RsaPrivateKey::from_pkcs1_der(&der).is_ok() {
        "RSA PRIVATE KEY"
    } else {
        return Err("the private key body is not a PKCS#8 key".into());
    };
    Ok((label.to_owned(), der))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../tests/fixtures/test_key.p8");
    const KEY_ENC: &str = include_str!("../../tests/fixtures/test_key_encrypted.p8");
    const KEY_PKCS1: &str = include_str!("../../tests/fixtures/test_key_pkcs1.pem");
    const ED25519: &str = include_str!("../../tests/fixtures/ed25519_key.p8");
    const FP: &str = include_str!("../../tests/fixtures/test_key.fingerprint");

    fn setting_of(e: &Error) -> &str {
        match e {
            Error::Config { setting, .. } => setting,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn fingerprint_matches_openssl() {
        let k = KeyPair::from_pem(KEY, None, KeySource::Inline).unwrap();
        assert_eq!(k.fingerprint(), FP.trim());
    }

    #[test]
    fn encrypted_key_with_passphrase() {
        let pass = Secret::new("test-passphrase");
        let k = KeyPair::from_pem(KEY_ENC, Some(&pass), KeySource::Inline).unwrap();
        assert_eq!(k.fingerprint(), FP.trim());
    }

    #[test]
    fn encrypted_key_errors_name_the_passphrase() {
        let e = KeyPair::from_pem(KEY_ENC, None, KeySource::Inline).unwrap_err();
        assert_eq!(setting_of(&e), "private_key_passphrase");
        assert!(e.to_string().contains("encrypted"), "{e}");
        let wrong = Secret::new("nope");
        let e = KeyPair::from_pem(KEY_ENC, Some(&wrong), KeySource::Inline).unwrap_err();
        assert_eq!(setting_of(&e), "private_key_passphrase");
        assert!(e.to_string().contains("wrong"), "{e}");
    }

    #[test]
    fn header_and_footer_are_optional() {
        let body: String = KEY.lines().filter(|l| !l.starts_with("-----")).collect();
        let k = KeyPair::from_pem(&body, None, KeySource::Inline).unwrap();
        assert_eq!(k.fingerprint(), FP.trim());
        let body: String = KEY_ENC
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let k = KeyPair::from_pem(
            &body,
            Some(&Secret::new("test-passphrase")),
            KeySource::Inline,
        )
        .unwrap();
        assert_eq!(k.fingerprint(), FP.trim());
    }

    #[test]
    fn crlf_and_indentation_are_tolerated() {
        let messy: String = KEY.lines().map(|l| format!("  {l}\r\n")).collect();
        let k = KeyPair::from_pem(&messy, None, KeySource::Inline).unwrap();
        assert_eq!(k.fingerprint(), FP.trim());
    }

    #[test]
    fn literal_backslash_n_escapes_are_accepted() {
        let escaped = KEY.trim().replace('\n', "\\n");
        assert!(!escaped.contains('\n'));
        let k = KeyPair::from_pem(&escaped, None, KeySource::Inline).unwrap();
        assert_eq!(k.fingerprint(), FP.trim());
    }

    #[test]
    fn pkcs1_is_accepted() {
        let k = KeyPair::from_pem(KEY_PKCS1, None, KeySource::Inline).unwrap();
        assert_eq!(k.fingerprint(), FP.trim());
    }

    #[test]
    fn non_rsa_and_malformed_keys_are_rejected_clearly() {
        let e = KeyPair::from_pem(ED25519, None, KeySource::File).unwrap_err();
        assert_eq!(setting_of(&e), "private_key_file");
        assert!(e.to_string().contains("not an RSA key"), "{e}");
        let e = KeyPair::from_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            None,
            KeySource::Inline,
        )
        .unwrap_err();
        assert_eq!(setting_of(&e), "private_key");
        let e = KeyPair::from_pem("not a key at all!", None, KeySource::Inline).unwrap_err();
        assert!(e.to_string().contains("neither PEM nor base64"), "{e}");
        let e = KeyPair::from_pem("", None, KeySource::Inline).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn missing_file_names_the_setting() {
        let e = KeyPair::from_file(Path::new("/nonexistent/key.p8"), None).unwrap_err();
        assert_eq!(setting_of(&e), "private_key_file");
        assert!(e.to_string().contains("/nonexistent/key.p8"), "{e}");
    }

    #[test]
    fn a_key_files_parse_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.p8");
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = KeyPair::from_file(&path, None).unwrap_err();
        assert_eq!(setting_of(&e), "private_key_file");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        std::fs::write(&path, KEY_ENC).unwrap();
        let e = KeyPair::from_file(&path, Some(&Secret::new("nope"))).unwrap_err();
        assert_eq!(setting_of(&e), "private_key_passphrase");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert!(!e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = KeyPair::from_pem(KEY, None, KeySource::Inline).unwrap();
        let dbg = format!("{k:?}");
        assert!(dbg.contains(FP.trim()));
        assert!(!dbg.contains("MII"), "{dbg}");
    }
}
