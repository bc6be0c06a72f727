//! The stage's S3 credentials: one set per location `:pipe-info` hands out, bound to that
//! location's prefix, to the caller and database that asked for it, and to its
//! `expiry_time_ms`. Nothing is stored: the session token carries the grant and an
//! HMAC-SHA256 of it under a key derived from the scoped-token secret, and the access key id
//! and secret key derive from the token, so an upload is checked (and survives a restart)
//! from its headers alone.
//!
//! ```text
//! x-amz-security-token: v1.<prefix>.<expiry ms>.<owner, base64url>.<HMAC, hex>
//! AWS_KEY_ID:           EMU + 17 hex digits of HMAC("key id" ‖ token)
//! AWS_SECRET_KEY:       base64 of 30 bytes of HMAC("secret key" ‖ token)
//! ```

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a session token grants: uploads under `prefix` until `expiry_ms`, for `owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The location's prefix: `snowpipe-emulator/stage/<prefix>/…` only.
    pub prefix: String,
    /// Milliseconds since the Unix epoch (the emulator's clock).
    pub expiry_ms: i64,
    /// The caller and database `:pipe-info` answered (`Stage::owner`).
    pub owner: String,
}

/// One location's S3 credentials.
pub(crate) struct Credentials {
    pub key_id: String,
    pub secret_key: String,
    pub token: String,
}

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> HmacSha256 {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
    }
    m
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The credentials granting `grant`, signed with `key`.
pub(crate) fn issue(key: &[u8; 32], grant: &Grant) -> Credentials {
    let owner = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&grant.owner);
    let payload = format!("v1.{}.{}.{owner}", grant.prefix, grant.expiry_ms);
    let tag = mac(key, &[b"token\0", payload.as_bytes()])
        .finalize()
        .into_bytes();
    let token = format!("{payload}.{}", hex(&tag));
    let (key_id, secret_key) = derived(key, &token);
    Credentials {
        key_id,
        secret_key,
        token,
    }
}

/// The access key id and secret key of `token`.
fn derived(key: &[u8; 32], token: &str) -> (String, String) {
    let id = mac(key, &[b"key id\0", token.as_bytes()])
        .finalize()
        .into_bytes();
    let secret = mac(key, &[b"secret key\0", token.as_bytes()])
        .finalize()
        .into_bytes();
    (
        format!("EMU{}", hex(&id)[..17].to_uppercase()),
        base64::engine::general_purpose::STANDARD.encode(&secret[..30]),
    )
}

/// Reads a session token: its grant, access key id and secret key, if `key` signed it.
///
/// # Errors
/// A sentence saying why the token is not one this stage issued (never the token).
pub(crate) fn open(key: &[u8; 32], token: &str) -> Result<(Grant, String, String), String> {
    let bad =
        || "the x-amz-security-token is not one this emulator's :pipe-info issued".to_string();
    if token.len() > 1024 {
        return Err(bad());
    }
    let (payload, tag_hex) = token.rsplit_once('.').ok_or_else(bad)?;
    let tag: Vec<u8> = (0..tag_hex.len())
        .step_by(2)
        .map(|i| {
            tag_hex
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    mac(key, &[b"token\0", payload.as_bytes()])
        .verify_slice(&tag)
        .map_err(|_| bad())?;
    let mut parts = payload.split('.');
    let (Some("v1"), Some(prefix), Some(expiry), Some(owner), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    let owner = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(owner)
        .ok()
        .and_then(|o| String::from_utf8(o).ok())
        .ok_or_else(bad)?;
    let grant = Grant {
        prefix: prefix.to_string(),
        expiry_ms: expiry.parse().map_err(|_| bad())?,
        owner,
    };
    let (key_id, secret_key) = derived(key, token);
    Ok((grant, key_id, secret_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_to_its_grant_and_keys_and_nothing_else_does() {
        let key = [4u8; 32];
        let grant = Grant {
            prefix: "abc".into(),
            expiry_ms: 1_800_000_000_000,
            owner: "ACME.ALICE\0DB".into(),
        };
        let c = issue(&key, &grant);
        assert_eq!(c.key_id.len(), 20);
        assert_eq!(c.secret_key.len(), 40);
        let (g, id, secret) = open(&key, &c.token).unwrap();
        assert_eq!((g, id, secret), (grant.clone(), c.key_id, c.secret_key));
        // Another prefix, expiry or owner in the payload, another key, a cut tag: refused.
        let forged = c.token.replacen(".abc.", ".abd.", 1);
        assert!(open(&key, &forged).is_err());
        let later = c.token.replacen("1800000000000", "1900000000000", 1);
        assert!(open(&key, &later).is_err());
        assert!(open(&[5u8; 32], &c.token).is_err());
        assert!(open(&key, &c.token[..c.token.len() - 2]).is_err());
        assert!(open(&key, "").is_err());
        let e = open(&key, &format!("{}x", c.token)).unwrap_err();
        assert!(!e.contains(&c.token));
    }
}
