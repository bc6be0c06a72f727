//! Authentication: key-pair JWT verification (§2.1), PATs (§2.3) and scoped tokens (§2.2).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest a key-pair JWT is accepted after its `iat` (Snowflake: one hour).
const MAX_JWT_AGE_S: i64 = 3600;
/// Clock skew tolerated on `iat`.
const SKEW_S: i64 = 60;

/// Why a credential was refused (the message is safe to log: it never contains the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// Error registering a public key.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the public key: {0}; pass a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY`")]
pub struct KeyError(String);

/// Whether `token` is one of `pats`, in time that depends on neither: every PAT is compared,
/// by the SHA-256 digests of both sides (which hides their lengths) with a constant-time
/// equality, so the time of a refusal tells nothing about how close a guess was.
fn pat_matches(pats: &[String], token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let sent = Sha256::digest(token.as_bytes());
    pats.iter()
        .fold(subtle::Choice::from(0), |found, p| {
            found | Sha256::digest(p.as_bytes()).ct_eq(&sent)
        })
        .into()
}

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// `ACCOUNT.USER`, `PAT` or `ANY`.
    pub subject: String,
    /// The session role: from the token exchange's `scope` (`session:role:<ROLE>`) or the
    /// key-pair JWT's `scp` claim (docs/protocol.md "Authentication and role").
    pub role: Option<String>,
}

impl Principal {
    fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            role: None,
        }
    }

    /// The user of a key-pair credential (`USER` of `ACCOUNT.USER`); `None` for a PAT or
    /// an emulator that accepts any credential.
    pub(crate) fn user(&self) -> Option<&str> {
        // ACCOUNT.USER: the account part never contains a dot.
        self.subject.split_once('.').map(|(_, u)| u)
    }
}

/// The role in a `session:role:<ROLE>` scope item, wherever it is in a space-separated
/// scope.
pub(crate) fn role_in_scope(scope: &str) -> Option<String> {
    scope
        .split_whitespace()
        .find_map(|item| item.strip_prefix("session:role:"))
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

/// Whether `role` (`PUBLIC` when `None`; surrounding double quotes ignored) may use database
/// `db` under `grants` (`(role, database)` pairs, `*` for every database; both compared
/// case-insensitively): always when there are no grants (`EmulatorConfig::role_grants`).
pub(crate) fn role_granted(grants: &[(String, String)], role: Option<&str>, db: &str) -> bool {
    if grants.is_empty() {
        return true;
    }
    let role = role.unwrap_or("PUBLIC").trim_matches('"');
    let db = db.trim_matches('"');
    grants
        .iter()
        .any(|(r, d)| r.eq_ignore_ascii_case(role) && (d == "*" || d.eq_ignore_ascii_case(db)))
}

#[derive(Debug, Deserialize)]
struct KeyPairClaims {
    iss: Option<String>,
    sub: Option<String>,
    iat: Option<serde_json::Number>,
    exp: Option<serde_json::Number>,
    scp: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ScopedClaims {
    iss: String,
    sub: String,
    scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    iat: i64,
    exp: i64,
    jti: String,
}

/// A registered public key and the users it may sign for.
struct RegisteredKey {
    key: DecodingKey,
    /// Upper-cased user names; `None`: any user.
    users: Option<Vec<String>>,
}

/// Registered keys and the scoped-token signing secret.
pub(crate) struct Authenticator {
    /// By fingerprint.
    keys: RwLock<HashMap<String, RegisteredKey>>,
    accept_any: bool,
    pats: Vec<String>,
    secret: Vec<u8>,
    ttl: Duration,
    /// Token issue and expiry times are this clock's.
    clock: crate::base::clock::Clock,
}

/// SHA-256 fingerprint of a public key, as Snowflake prints it (`SHA256:` + base64).
///
/// # Errors
/// When the PEM is not an RSA public key.
pub fn public_key_fingerprint(pem: &str) -> Result<String, KeyError> {
    let key = parse_public_key(pem)?;
    Ok(format!("SHA256:{}", fingerprint(&key)?))
}

fn parse_public_key(pem: &str) -> Result<RsaPublicKey, KeyError> {
    let pem = pem.trim();
    RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|e| KeyError(e.to_string()))
}

fn fingerprint(key: &RsaPublicKey) -> Result<String, KeyError> {
    let der = key
        .to_public_key_der()
        .map_err(|e| KeyError(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(Sha256::digest(der.as_bytes())))
}

/// Seconds from a claim that may be in seconds or milliseconds.
fn claim_seconds(n: &serde_json::Number) -> Option<i64> {
    let v = n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?;
    Some(if v > 100_000_000_000 { v / 1000 } else { v })
}

impl Authenticator {
    pub(crate) fn new(
        public_keys: &[String],
        user_public_keys: &[(String, String)],
        accept_any: bool,
        pats: Vec<String>,
        ttl: Duration,
    ) -> Result<Self, KeyError> {
        let a = Self {
            keys: RwLock::new(HashMap::new()),
            accept_any,
            pats,
            secret: crate::security::token_secret::random(),
            ttl,
            clock: crate::base::clock::Clock::default(),
        };
        for k in public_keys {
            a.register(k)?;
        }
        for (user, k) in user_public_keys {
            a.register_for_user(user, k)?;
        }
        Ok(a)
    }

    /// Reads token times from `clock`.
    pub(crate) fn set_clock(&mut self, clock: crate::base::clock::Clock) {
        self.clock = clock;
    }

    /// The scoped-token signing secret, from which the stage's secrets derive.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// Uses this scoped-token signing secret (the data directory's, see `token_secret.rs`, so
    /// that scoped tokens survive a restart).
    pub(crate) fn set_secret(&mut self, secret: Vec<u8>) {
        if !secret.is_empty() {
            self.secret = secret;
        }
    }

    /// Registers a key that may sign for any user.
    pub(crate) fn register(&self, pem: &str) -> Result<String, KeyError> {
        self.register_key(pem, None)
    }

    /// Registers a key that may sign only for `user` (and any other user it is registered
    /// for). A key also registered for any user stays unrestricted.
    pub(crate) fn register_for_user(&self, user: &str, pem: &str) -> Result<String, KeyError> {
        self.register_key(pem, Some(user.trim().to_ascii_uppercase()))
    }

    fn register_key(&self, pem: &str, user: Option<String>) -> Result<String, KeyError> {
        let key = parse_public_key(pem)?;
        let fp = fingerprint(&key)?;
        let dk =
            DecodingKey::from_rsa_raw_components(&key.n().to_bytes_be(), &key.e().to_bytes_be());
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let users = match (keys.remove(&fp).map(|k| k.users), user) {
            (Some(None), _) | (_, None) => None,
            (Some(Some(mut users)), Some(user)) => {
                if !users.contains(&user) {
                    users.push(user);
                }
                Some(users)
            }
            (None, Some(user)) => Some(vec![user]),
        };
        keys.insert(fp.clone(), RegisteredKey { key: dk, users });
        Ok(fp)
    }

    /// Whether any credential is accepted (`--accept-any-key`).
    pub(crate) fn accepts_any(&self) -> bool {
        self.accept_any
    }

    pub(crate) fn key_count(&self) -> usize {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Checks a control-plane credential: a key-pair JWT or a PAT.
    pub(crate) fn verify_control(
        &self,
        token: &str,
        token_type: Option<&str>,
    ) -> Result<Principal, AuthError> {
        if self.accept_any {
            return Ok(Principal::new("ANY"));
        }
        let is_pat_type = token_type
            .map(|t| t.eq_ignore_ascii_case("PROGRAMMATIC_ACCESS_TOKEN"))
            .unwrap_or(false);
        if pat_matches(&self.pats, token) {
            return Ok(Principal::new("PAT"));
        }
        if is_pat_type {
            return Err(AuthError(
                "programmatic access token not recognised; start the emulator with --pat".into(),
            ));
        }
        self.verify_key_pair_jwt(token)
    }

    fn verify_key_pair_jwt(&self, token: &str) -> Result<Principal, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError(format!("not a JWT: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError(format!(
                "JWT algorithm {:?} not accepted; key-pair JWTs use RS256",
                header.alg
            )));
        }
        let unverified = jsonwebtoken::dangerous::insecure_decode::<KeyPairClaims>(token)
            .map_err(|e| AuthError(format!("JWT claims unreadable: {e}")))?
            .claims;
        let iss = unverified
            .iss
            .ok_or_else(|| AuthError("JWT has no iss claim".into()))?;
        let (qualified_user, fp) = iss
            .rsplit_once(".SHA256:")
            .ok_or_else(|| AuthError("JWT iss must be ACCOUNT.USER.SHA256:<fingerprint>".into()))?;
        let sub = unverified
            .sub
            .ok_or_else(|| AuthError("JWT has no sub claim".into()))?;
        if sub != qualified_user || !qualified_user.contains('.') {
            return Err(AuthError(format!(
                "JWT sub {sub:?} must equal the ACCOUNT.USER part of iss ({qualified_user:?})"
            )));
        }
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let registered = keys.get(fp).ok_or_else(|| {
            AuthError(format!(
                "no registered public key has fingerprint SHA256:{fp}; register it with --public-key"
            ))
        })?;
        if let Some(users) = &registered.users {
            // ACCOUNT.USER: the account part never contains a dot.
            let user = qualified_user
                .split_once('.')
                .map_or(qualified_user, |(_, u)| u);
            if !users.iter().any(|u| u.eq_ignore_ascii_case(user)) {
                return Err(AuthError(format!(
                    "the public key SHA256:{fp} is registered for user {} only, not {user}; \
                     register it for this user too with --public-key {user}=FILE",
                    users.join(", ")
                )));
            }
        }
        let key = &registered.key;
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(token, key, &v)
            .map_err(|e| AuthError(format!("JWT signature check failed: {e}")))?;
        let now = self.clock.now_s();
        let exp = unverified
            .exp
            .as_ref()
            .and_then(claim_seconds)
            .ok_or_else(|| AuthError("JWT has no numeric exp claim".into()))?;
        if exp <= now {
            return Err(AuthError("JWT expired".into()));
        }
        if let Some(iat) = unverified.iat.as_ref().and_then(claim_seconds) {
            if iat > now + SKEW_S {
                return Err(AuthError("JWT issued in the future (iat)".into()));
            }
            // Saturating: an `iat` near i64::MIN must not wrap around to "recent".
            if now.saturating_sub(iat) > MAX_JWT_AGE_S {
                return Err(AuthError("JWT older than one hour (iat)".into()));
            }
        } else if exp.saturating_sub(now) > MAX_JWT_AGE_S + SKEW_S {
            return Err(AuthError(
                "JWT without iat must expire within one hour".into(),
            ));
        }
        Ok(Principal {
            subject: sub,
            role: unverified.scp.as_deref().and_then(role_in_scope),
        })
    }

    /// Mints a scoped token (a JWT with `exp` in seconds).
    pub(crate) fn mint_scoped(&self, principal: &Principal, scope: &str) -> String {
        let now = self.clock.now_s();
        let claims = ScopedClaims {
            iss: "snowpipe-emulator".into(),
            sub: principal.subject.clone(),
            scope: scope.to_string(),
            role: principal.role.clone(),
            iat: now,
            exp: now + self.ttl.as_secs().max(1) as i64,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .unwrap_or_default()
    }

    /// Checks a scoped token on a data-plane call.
    pub(crate) fn verify_scoped(&self, token: &str) -> Result<Principal, AuthError> {
        if self.accept_any {
            return Ok(Principal::new("ANY"));
        }
        let mut v = Validation::new(Algorithm::HS256);
        // Expiry is checked below, by the emulator's clock.
        v.validate_exp = false;
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp"]);
        match jsonwebtoken::decode::<ScopedClaims>(
            token,
            &DecodingKey::from_secret(&self.secret),
            &v,
        ) {
            Ok(t) if t.claims.exp > self.clock.now_s() => Ok(Principal {
                subject: t.claims.sub,
                role: t.claims.role,
            }),
            Ok(_) => Err(AuthError(
                "scoped token expired; exchange a new one at /oauth/token".into(),
            )),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(AuthError(
                    "scoped token expired; exchange a new one at /oauth/token".into(),
                )),
                _ => Err(AuthError(format!(
                    "not a scoped token issued by this emulator ({e}); exchange one at /oauth/token"
                ))),
            },
        }
    }
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! A fixed test key pair and a JWT minting helper (tests only).
    use super::*;
    use std::sync::OnceLock;

    /// (private PKCS#8 PEM, public SPKI PEM) of a 2048-bit key generated once per test run.
    pub(crate) fn pair(n: usize) -> (String, String) {
        static KEYS: OnceLock<Vec<(String, String)>> = OnceLock::new();
        KEYS.get_or_init(|| {
            (0..2)
                .map(|i| {
                    let k = crate::KeyPair::from_seed(42 + i).unwrap();
                    (
                        k.private_key_pem().to_owned(),
                        k.public_key_pem().to_owned(),
                    )
                })
                .collect()
        })[n]
            .clone()
    }

    /// A key-pair JWT as the official SDK makes it (iat/exp in milliseconds).
    pub(crate) fn jwt(
        private_pem: &str,
        public_pem: &str,
        account: &str,
        user: &str,
        ms: bool,
    ) -> String {
        let fp = public_key_fingerprint(public_pem).unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        let (iat, exp) = if ms {
            (now, now + 3_540_000)
        } else {
            (now / 1000, now / 1000 + 3540)
        };
        let claims = serde_json::json!({
            "iss": format!("{account}.{user}.{fp}"),
            "sub": format!("{account}.{user}"),
            "iat": iat, "exp": exp,
        });
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::*;
    use super::*;

    fn auth(keys: &[String]) -> Authenticator {
        Authenticator::new(
            keys,
            &[],
            false,
            vec!["pat-1".into()],
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    #[test]
    fn registered_key_accepted_in_ms_and_s() {
        let (private, public) = pair(0);
        let a = auth(std::slice::from_ref(&public));
        for ms in [true, false] {
            let p = a
                .verify_control(
                    &jwt(&private, &public, "ACME", "BOB", ms),
                    Some("KEYPAIR_JWT"),
                )
                .unwrap();
            assert_eq!(p.subject, "ACME.BOB");
        }
    }

    #[test]
    fn unregistered_key_rejected() {
        let (_, public0) = pair(0);
        let (private1, public1) = pair(1);
        let a = auth(&[public0]);
        let err = a
            .verify_control(&jwt(&private1, &public1, "ACME", "BOB", true), None)
            .unwrap_err();
        assert!(err.0.contains("no registered public key"), "{err}");
    }

    #[test]
    fn forged_signature_rejected() {
        // Claims name key 0's fingerprint but are signed with key 1.
        let (_, public0) = pair(0);
        let (private1, _) = pair(1);
        let a = auth(std::slice::from_ref(&public0));
        let err = a
            .verify_control(&jwt(&private1, &public0, "ACME", "BOB", true), None)
            .unwrap_err();
        assert!(err.0.contains("signature"), "{err}");
    }

    #[test]
    fn pats_match_exactly_whatever_their_length() {
        let pats = vec!["pat-1".to_string(), "second-token".to_string()];
        let cases = [
            ("pat-1", true),
            ("second-token", true),
            ("pat-", false),
            ("pat-12", false),
            ("PAT-1", false),
            ("", false),
            ("second-token ", false),
        ];
        for (token, expected) in cases {
            assert_eq!(pat_matches(&pats, token), expected, "{token:?}");
        }
        assert!(!pat_matches(&[], "pat-1"));
    }

    #[test]
    fn pat_and_scoped_tokens() {
        let a = auth(&[]);
        let p = a
            .verify_control("pat-1", Some("PROGRAMMATIC_ACCESS_TOKEN"))
            .unwrap();
        assert!(a
            .verify_control("pat-2", Some("PROGRAMMATIC_ACCESS_TOKEN"))
            .is_err());
        let t = a.mint_scoped(&p, "127.0.0.1");
        let claims: serde_json::Value =
            jsonwebtoken::dangerous::insecure_decode(&t).unwrap().claims;
        let exp = claims["exp"].as_i64().unwrap();
        assert!(
            (exp - crate::base::clock::Clock::new().now_s() - 3600).abs() < 5,
            "exp in seconds"
        );
        assert!(a.verify_scoped(&t).is_ok());
        assert!(a.verify_scoped("garbage").is_err());
        let other = auth(&[]);
        assert!(other.verify_scoped(&t).is_err(), "other emulator's secret");
    }

    #[test]
    fn expired_scoped_token_rejected() {
        let a = Authenticator::new(&[], &[], false, vec![], Duration::from_secs(1)).unwrap();
        let t = a.mint_scoped(&Principal::new("X.Y"), "h");
        std::thread::sleep(Duration::from_millis(2100));
        assert!(a.verify_scoped(&t).unwrap_err().0.contains("expired"));
    }
}
