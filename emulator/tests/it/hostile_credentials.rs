//! The hostile-input suite (issue 81, item 21) on the emulator's credentials: key-pair JWTs
//! exchanged at `/oauth/token` and sent to the SQL API, and scoped tokens sent to the data
//! plane, against the real `snowpipe-emulator` binary started with one `--public-key` (no
//! `--accept-any-key`), under an address-space cap.
//!
//! Every bad credential must get a 4xx naming its error (the API's `code`; 431 for a header
//! past the server's header limit), the server must live with peak RSS within
//! `--max-pending-bytes` + 64 MiB, and after each case a good JWT's scoped token must open a
//! channel and append a row that lands exactly once (counted through the SQL API).
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use snowpipe_hostile::{gen, Case, Limits, Rng, Suite, MIB};

use crate::common::{jwt, keys, pipe_path, signed_jwt, DATA, DDL, JWT_BEARER};
use crate::hostile_suite::{http, start_with, survived};

/// What a hostile credential is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cred {
    /// A JWT of 64 KiB to 8 MiB (in the header, or as the form's assertion).
    Huge,
    /// Expired, or issued in the future.
    Expired,
    /// No signature, or `alg: none`.
    Unsigned,
    /// Signed by a key the emulator does not know, or HS256 keyed with the public key.
    WrongKey,
    /// Claims that are not what they say: another account, deep JSON, not base64.
    BadClaims,
    /// A scoped token forged (HS256 with a guessed secret, `alg: none`) or cut.
    ForgedScoped,
}

const CREDS: [Cred; 6] = [
    Cred::Huge,
    Cred::Expired,
    Cred::Unsigned,
    Cred::WrongKey,
    Cred::BadClaims,
    Cred::ForgedScoped,
];

fn limits() -> Limits {
    let mut l = Limits::with_budget(256 * MIB);
    l.wall = Duration::from_secs(600);
    l
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A JWT of `header` and `claims` (JSON texts) with `signature` as is.
fn token(header: &str, claims: &str, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.as_bytes()),
        b64(claims.as_bytes())
    )
}

/// The claims of a good key-pair JWT of key 0, as JSON text.
fn good_claims() -> String {
    let good = jwt(0);
    let part = good.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// `POST /oauth/token` with `jwt` as the bearer (or, `in_form`, the form's assertion).
fn exchange(url: &str, jwt: &str, in_form: bool) -> Result<(u16, String), String> {
    let mut form = vec![("scope", "127.0.0.1"), ("grant_type", JWT_BEARER)];
    let mut rb = http()
        .post(format!("{url}/oauth/token"))
        .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT");
    if in_form {
        form.push(("assertion", jwt));
    } else {
        rb = rb.bearer_auth(jwt);
    }
    let r = rb
        .form(&form)
        .send()
        .map_err(|e| format!("no answer: {e}"))?;
    let status = r.status().as_u16();
    Ok((status, r.text().unwrap_or_default()))
}

/// `PUT` the channel `channel` open with `scoped` as the bearer.
fn open_with(url: &str, scoped: &str, channel: &str) -> Result<(u16, String), String> {
    let r = http()
        .put(format!("{url}{}/channels/{channel}", pipe_path("P")))
        .bearer_auth(scoped)
        .json(&json!({}))
        .send()
        .map_err(|e| format!("no answer: {e}"))?;
    let status = r.status().as_u16();
    Ok((status, r.text().unwrap_or_default()))
}

/// A SQL API statement with `jwt` as the bearer.
fn sql_with(url: &str, jwt: &str, statement: &str) -> Result<(u16, String), String> {
    let r = http()
        .post(format!("{url}/api/v2/statements"))
        .bearer_auth(jwt)
        .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
        .json(&json!({"database": "DB", "schema": "SCH", "statement": statement}))
        .send()
        .map_err(|e| format!("no answer: {e}"))?;
    let status = r.status().as_u16();
    Ok((status, r.text().unwrap_or_default()))
}

/// The answer is a 4xx naming an error code (the API's `code`), or a 431.
///
/// A huge credential is refused from its stated length (a head past 32 KiB, a body past the
/// form's limit) while the client still sends it, so the client may see only the close.
fn refused(case: &Case<Cred>, what: &str, r: Result<(u16, String), String>) {
    match r {
        Err(e) if case.class == Cred::Huge && e.contains("error sending request") => {}
        Ok((431, _)) => {}
        Ok((s, body)) if (400..500).contains(&s) => {
            let code = serde_json::from_str::<Value>(&body).ok().and_then(|v| {
                v["code"]
                    .as_str()
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
            });
            if code.is_none() {
                case.fail(format!(
                    "{what}: status {s} names no error code: {body:.300}"
                ));
            }
        }
        Ok((s, body)) => case.fail(format!("{what}: status {s}, not a 4xx: {body:.300}")),
        Err(e) => case.fail(format!("{what}: {e}")),
    }
}

/// A bad key-pair JWT of `class` (not `ForgedScoped`) and whether to send it in the form.
fn bad_jwt(class: Cred, rng: &mut Rng) -> (String, bool) {
    let claims = good_claims();
    let rs = r#"{"alg":"RS256","typ":"JWT"}"#;
    let now = chrono::Utc::now().timestamp_millis();
    match class {
        Cred::Huge => {
            let pad = "x".repeat(rng.range(64 << 10, 8 << 20) as usize);
            let huge = signed_jwt(
                0,
                "BOB",
                json!({"pad": pad, "iat": now, "exp": now + 60_000}),
            );
            (huge, rng.one_in(2))
        }
        Cred::Expired => {
            let (iat, exp) = if rng.one_in(2) {
                (now - 7_200_000, now - 3_600_000)
            } else {
                (now + 86_400_000, now + 90_000_000)
            };
            (signed_jwt(0, "BOB", json!({"iat": iat, "exp": exp})), false)
        }
        Cred::Unsigned => {
            let good = jwt(0);
            if rng.one_in(2) {
                let cut = good.rsplit_once('.').unwrap().0.to_owned() + ".";
                (cut, false)
            } else {
                (token(r#"{"alg":"none","typ":"JWT"}"#, &claims, ""), false)
            }
        }
        Cred::WrongKey => {
            if rng.one_in(2) {
                (
                    signed_jwt(1, "BOB", json!({"iat": now, "exp": now + 60_000})),
                    false,
                )
            } else {
                // HS256 keyed with the public key's PEM: the classic algorithm confusion.
                let (_, public) = keys(0);
                let t = jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &serde_json::from_str::<Value>(&claims).unwrap(),
                    &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
                )
                .unwrap();
                (t, false)
            }
        }
        Cred::BadClaims => match rng.below(3) {
            0 => {
                let other = claims.replace("ACME.", "OTHER.");
                let sig = jwt(0).rsplit_once('.').unwrap().1.to_owned();
                (token(rs, &other, &sig), false)
            }
            1 => {
                let mut deep = Vec::new();
                gen::nested_json(&mut deep, rng.range(1_000, 50_000) as usize, rng);
                (
                    token(rs, &String::from_utf8_lossy(&deep), "c2ln"),
                    rng.one_in(2),
                )
            }
            _ => ("%%%.!!!.###".to_owned(), false),
        },
        Cred::ForgedScoped => unreachable!("a scoped token"),
    }
}

/// A forged scoped token.
fn forged_scoped(rng: &mut Rng, good: &str) -> String {
    let exp = chrono::Utc::now().timestamp() + 3600;
    let claims = json!({"sub": "ACME.BOB", "exp": exp, "role": "ACCOUNTADMIN"}).to_string();
    match rng.below(4) {
        0 => jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &serde_json::from_str::<Value>(&claims).unwrap(),
            &jsonwebtoken::EncodingKey::from_secret(&rng.bytes(32)),
        )
        .unwrap(),
        1 => token(r#"{"alg":"none"}"#, &claims, ""),
        2 => good[..good.len() - 1 - rng.below(8) as usize].to_owned(),
        _ => {
            // The good token's signature on other claims: another subject's token.
            let sig = good.rsplit_once('.').unwrap().1;
            token(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, sig)
        }
    }
}

/// The good path after a case: a scoped token, a channel, a row of ID `id` landed once.
fn good_row_lands(url: &str, case: &Case<Cred>, id: u32) {
    let scoped = match exchange(url, &jwt(0), false) {
        Ok((200, t)) => t,
        r => case.fail(format!("after the case, a good JWT's exchange got {r:?}")),
    };
    let channel = format!("good{}", case.index);
    let ct = match open_with(url, &scoped, &channel) {
        Ok((200, body)) => {
            let v: Value = serde_json::from_str(&body).unwrap();
            v["next_continuation_token"].as_str().unwrap().to_owned()
        }
        r => case.fail(format!("after the case, a good open got {r:?}")),
    };
    let r = http()
        .post(format!(
            "{url}{DATA}/channels/{channel}/rows?continuationToken={ct}&offsetToken=1&requestId=h"
        ))
        .bearer_auth(&scoped)
        .header("Content-Type", "application/x-ndjson")
        .body(format!("{{\"ID\":{id}}}\n"))
        .send()
        .map(|r| r.status().as_u16());
    if !matches!(r, Ok(200)) {
        case.fail(format!("after the case, a good append got {r:?}"));
    }
    let q = format!("SELECT COUNT(*) FROM T WHERE ID = {id}");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, body) = sql_with(url, &jwt(0), &q).unwrap_or_default();
        let n = serde_json::from_str::<Value>(&body)
            .ok()
            .map(|v| v["data"][0][0].clone());
        if s == 200 && n == Some(json!("1")) {
            return;
        }
        if Instant::now() > until {
            case.fail(format!(
                "after the case, the good row {id} did not land once: {s} {body:.300}"
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn hostile_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pub");
    std::fs::write(&key, keys(0).1).unwrap();
    let extra = ["--public-key", key.to_str().unwrap()];
    let (server, url) = start_with(dir.path(), DDL.as_bytes(), &extra, &limits());
    let url = url.expect("the emulator listens");
    let suite = Suite::from_env("credentials", CREDS.len());
    let mut failures = suite.failures(&CREDS, |case| {
        let rng = &mut case.rng.clone();
        if case.class == Cred::ForgedScoped {
            let good = match exchange(&url, &jwt(0), false) {
                Ok((200, t)) => t,
                r => case.fail(format!("a good JWT's exchange got {r:?}")),
            };
            let forged = forged_scoped(rng, &good);
            let r = open_with(&url, &forged, &format!("bad{}", case.index));
            refused(&case, "a forged scoped token opening a channel", r);
        } else {
            let (bad, in_form) = bad_jwt(case.class, rng);
            let what = format!("a {:?} JWT of {} bytes", case.class, bad.len());
            refused(
                &case,
                &format!("{what} exchanged"),
                exchange(&url, &bad, in_form),
            );
            refused(
                &case,
                &format!("{what} on the SQL API"),
                sql_with(&url, &bad, "SELECT 1"),
            );
            // A key-pair JWT is not a scoped token either.
            refused(
                &case,
                &format!("{what} as a scoped token"),
                open_with(&url, &bad, "x"),
            );
        }
        good_row_lands(&url, &case, 2_000_000 + case.index as u32);
    });
    let o = server
        .stop(snowpipe_hostile::Signal::Term)
        .expect("stop the emulator");
    eprintln!(
        "hostile {}: the server's run: {}",
        suite.surface(),
        o.summary()
    );
    // The server's run is checked whatever `HOSTILE_ONLY` ran of it.
    let case = suite.always_case(CREDS[0]);
    failures.extend(survived(&case, &o, &limits()).err());
    suite.finish(failures);
}
