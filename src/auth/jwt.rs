//! Key-pair JWTs for the control plane (docs/protocol-wire.md §2.1).
//!
//! Header `{"typ":"JWT","alg":"RS256"}`; claims `iss = ACCOUNT.USER.SHA256:<fp>`,
//! `sub = ACCOUNT.USER`, `iat`/`exp` in seconds with a 59-minute lifetime, and
//! `scp = session:role:<ROLE>` only when a role is configured. A fresh JWT is minted for every
//! control-plane request, as the official SDK does; the parsed key is cached.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::auth::key::KeyPair;
use crate::error::Error;
use crate::Result;

/// Lifetime of a key-pair JWT (Snowflake accepts at most one hour).
pub(crate) const JWT_LIFETIME: Duration = Duration::from_secs(59 * 60);

/// The claims of a key-pair JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Claims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scp: Option<String>,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
}

/// Mints key-pair JWTs for one account/user/role.
#[derive(Debug, Clone)]
pub(crate) struct JwtSigner {
    key: Arc<KeyPair>,
    /// `ACCOUNT.USER`, normalised.
    subject: String,
    role: Option<String>,
}

impl JwtSigner {
    pub(crate) fn new(key: Arc<KeyPair>, account: &str, user: &str, role: Option<&str>) -> Self {
        Self {
            key,
            subject: format!("{}.{}", account_for_jwt(account), user.to_uppercase()),
            role: role.map(str::to_owned),
        }
    }

    /// The public key fingerprint, for error messages (not secret).
    pub(crate) fn fingerprint(&self) -> &str {
        self.key.fingerprint()
    }

    /// `ACCOUNT.USER` as it appears in `sub`.
    pub(crate) fn subject(&self) -> &str {
        &self.subject
    }

    /// The claims for a JWT issued at `now`.
    pub(crate) fn claims_at(&self, now: SystemTime) -> Claims {
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Claims {
            iss: format!("{}.SHA256:{}", self.subject, self.key.fingerprint()),
            sub: self.subject.clone(),
            scp: self.role.as_ref().map(|r| format!("session:role:{r}")),
            iat,
            exp: iat + JWT_LIFETIME.as_secs(),
        }
    }

    /// Signs a fresh JWT.
    ///
    /// # Errors
    /// [`Error::Auth`] if signing fails (which would mean a broken key).
    pub(crate) fn sign(&self) -> Result<String> {
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        jsonwebtoken::encode(
            &header,
            &self.claims_at(SystemTime::now()),
            self.key.encoding_key(),
        )
        .map_err(|e| Error::Auth {
            message: "cannot sign the key-pair JWT".into(),
            source: Some(Box::new(e)),
        })
    }
}

/// The account part of `iss`/`sub`: upper-cased, with any region suffix (everything from the
/// first `.`) stripped, as the official SDK does (`xy12345.us-east-2.aws` → `XY12345`).
pub(crate) fn account_for_jwt(account: &str) -> String {
    let account = account.trim();
    let base = account.split('.').next().unwrap_or(account);
    base.to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::key::KeySource;
    use base64::Engine as _;

    const KEY: &str = include_str!("../../tests/fixtures/test_key.p8");
    const PUB: &str = include_str!("../../tests/fixtures/test_key.pub.pem");
    const FP: &str = include_str!("../../tests/fixtures/test_key.fingerprint");

    fn signer(role: Option<&str>) -> JwtSigner {
        let key = Arc::new(KeyPair::from_pem(KEY, None, KeySource::Inline).unwrap());
        JwtSigner::new(key, "myorg-myacct", "myUser", role)
    }

    #[test]
    fn account_normalisation() {
        assert_eq!(account_for_jwt("xy12345.us-east-2.aws"), "XY12345");
        assert_eq!(account_for_jwt("myorg-myacct"), "MYORG-MYACCT");
        assert_eq!(account_for_jwt(" abc "), "ABC");
    }

    #[test]
    fn claims_without_role() {
        let c = signer(None).claims_at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(c.sub, "MYORG-MYACCT.MYUSER");
        assert_eq!(c.iss, format!("MYORG-MYACCT.MYUSER.SHA256:{}", FP.trim()));
        assert_eq!(c.iat, 1_700_000_000);
        assert_eq!(c.exp, 1_700_000_000 + 3540);
        assert_eq!(c.scp, None);
        let json = serde_json::to_value(&c).unwrap();
        assert!(json.get("scp").is_none());
    }

    #[test]
    fn role_keeps_its_case_in_scp() {
        let c = signer(Some("MyRole")).claims_at(SystemTime::now());
        assert_eq!(c.scp.as_deref(), Some("session:role:MyRole"));
    }

    #[test]
    fn signed_jwt_verifies_with_the_public_key() {
        let token = signer(Some("R")).sign().unwrap();
        let header_b64 = token.split('.').next().unwrap();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header_b64)
            .unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(header, serde_json::json!({"typ": "JWT", "alg": "RS256"}));

        let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUB.as_bytes()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], "MYORG-MYACCT.MYUSER");
        assert_eq!(data.claims["scp"], "session:role:R");
        let iat = data.claims["iat"].as_u64().unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            iat.abs_diff(now) < 60,
            "iat {iat} must be in seconds (now {now})"
        );
    }
}
