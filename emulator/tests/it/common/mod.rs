//! Test helpers: a key pair, key-pair JWTs, and a tiny HTTP client for the protocol.
#![allow(dead_code)]

#[cfg(target_os = "linux")]
mod child;
#[cfg(target_os = "linux")]
pub(crate) use child::ChildEmulator;
pub(crate) mod stage;

use std::sync::OnceLock;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use snowpipe_emulator::{Emulator, EmulatorConfig, KeyPair};

pub(crate) const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE T (ID NUMBER, NAME VARCHAR(100), PRICE FLOAT, DOC VARIANT);
CREATE OR REPLACE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;
";

pub(crate) const BASE: &str = "/v2/streaming/databases/DB/schemas/SCH/pipes/P";
pub(crate) const DATA: &str = "/v2/streaming/data/databases/DB/schemas/SCH/pipes/P";

/// (private PKCS#8 PEM, public SPKI PEM); index 0 and 1 are different keys.
pub(crate) fn keys(n: usize) -> (String, String) {
    static KEYS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..2u64)
            .map(|i| {
                let k = KeyPair::from_seed(1000 + i).unwrap();
                (
                    k.private_key_pem().to_owned(),
                    k.public_key_pem().to_owned(),
                )
            })
            .collect()
    })[n]
        .clone()
}

/// A key-pair JWT like the official SDK's (iat/exp in ms).
pub(crate) fn jwt(n: usize) -> String {
    jwt_for(n, "BOB")
}

/// A key-pair JWT of `ACME.<user>` signed with key `n`.
pub(crate) fn jwt_for(n: usize, user: &str) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    signed_jwt(n, user, json!({"iat": now, "exp": now + 3_540_000}))
}

/// A key-pair JWT of `ACME.<user>` signed with key `n`: `iss` and `sub` as the official SDK
/// sets them, then the fields of `claims` (a JSON object).
pub(crate) fn signed_jwt(n: usize, user: &str, claims: Value) -> String {
    let (private, public) = keys(n);
    let fp = snowpipe_emulator::public_key_fingerprint(&public).unwrap();
    let mut all = json!({"iss": format!("ACME.{user}.{fp}"), "sub": format!("ACME.{user}")});
    if let (Some(all), Value::Object(extra)) = (all.as_object_mut(), claims) {
        all.extend(extra);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &all,
        &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The `grant_type` of a key-pair JWT exchange.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The emulator's `/oauth/token` URL.
pub(crate) fn token_url(emu: &Emulator) -> String {
    format!("{}/oauth/token", emu.url())
}

/// `POST endpoint` (an `/oauth/token` URL) for a scoped token of scope `127.0.0.1`, with
/// `credential` as the bearer, `token_type` as `X-Snowflake-Authorization-Token-Type` and
/// `grant_type` in the form, when given.
pub(crate) async fn request_token(
    http: &reqwest::Client,
    endpoint: &str,
    credential: &str,
    token_type: Option<&str>,
    grant_type: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("scope", "127.0.0.1")];
    form.extend(grant_type.map(|g| ("grant_type", g)));
    let mut rb = http.post(endpoint).bearer_auth(credential).form(&form);
    if let Some(t) = token_type {
        rb = rb.header("X-Snowflake-Authorization-Token-Type", t);
    }
    rb.send().await.unwrap()
}

/// An emulator started with `config` and a client connected to it.
pub(crate) async fn connected(config: EmulatorConfig) -> (Emulator, Client) {
    let emu = Emulator::start(config).await.unwrap();
    let c = Client::connect(&emu).await;
    (emu, c)
}

/// `GET url`'s JSON body.
pub(crate) async fn get_json(url: &str) -> Value {
    reqwest::Client::new()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The `snowpipe-emulator` binary.
pub(crate) fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_snowpipe-emulator"))
}

/// Runs the binary with `args`, asserts it succeeded and returns its standard output.
pub(crate) fn run_bin(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn config() -> EmulatorConfig {
    EmulatorConfig::for_tests()
        .with_ddl(DDL)
        .with_public_key(keys(0).1)
}

/// Runs `statement` through the SQL API (`POST /api/v2/statements{query}`) in `DB.SCH` as the
/// key-pair user, with `role` in the request when given.
pub(crate) async fn sql_statement(
    emu: &Emulator,
    statement: &str,
    role: Option<&str>,
    query: &str,
) -> Resp {
    let mut body = json!({"statement": statement, "database": "DB", "schema": "SCH"});
    if let Some(r) = role {
        body["role"] = json!(r);
    }
    sql_request(emu, &jwt(0), body, query).await
}

/// Posts `body` to the SQL API (`POST /api/v2/statements{query}`) with the key-pair JWT
/// `token`.
pub(crate) async fn sql_request(emu: &Emulator, token: &str, body: Value, query: &str) -> Resp {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v2/statements{query}", emu.url()))
        .bearer_auth(token)
        .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
        .json(&body)
        .send()
        .await
        .unwrap();
    Resp::read(r).await
}

/// `GET /api/v2/statements/{handle}{query}` as the key-pair user `user` (key 0).
pub(crate) async fn get_statement(
    emu: &Emulator,
    user: &str,
    handle: &str,
    query: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/api/v2/statements/{handle}{query}", emu.url()))
        .bearer_auth(jwt_for(0, user))
        .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
        .send()
        .await
        .unwrap()
}

/// The unauthenticated console's state (`GET /console/state`), as text.
pub(crate) async fn console_state(emu: &Emulator) -> String {
    reqwest::get(format!("{}/console/state", emu.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The REST path of pipe `pipe` of `DB.SCH`.
pub(crate) fn pipe_path(pipe: &str) -> String {
    format!("/v2/streaming/databases/DB/schemas/SCH/pipes/{pipe}")
}

/// A protocol client holding a scoped token.
pub(crate) struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
}

pub(crate) struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Reads `r`: its status, its text and that text as JSON (`Null` when it is not JSON).
    pub(crate) async fn read(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, body, text }
    }

    /// Asserts a 200 and returns the answer's `next_continuation_token`.
    pub(crate) fn next_token(&self) -> String {
        assert_eq!(self.status, 200, "{}", self.text);
        self.body["next_continuation_token"]
            .as_str()
            .expect("next_continuation_token")
            .to_string()
    }

    /// Asserts a SQL API refusal: a 422 with Snowflake's error `code`, its text holding
    /// `says`.
    pub(crate) fn assert_error(&self, code: &str, says: &str) {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (422, Some(code)),
            "{}",
            self.text
        );
        assert!(self.text.contains(says), "{says:?} in {}", self.text);
    }
}

impl Client {
    pub(crate) async fn connect(emu: &Emulator) -> Client {
        Self::connect_with(emu, reqwest::Client::new()).await
    }

    pub(crate) async fn connect_with(emu: &Emulator, http: reqwest::Client) -> Client {
        let url = emu.url();
        let r = request_token(
            &http,
            &format!("{url}/oauth/token?requestId=r1&retryCount=0"),
            &jwt(0),
            Some("KEYPAIR_JWT"),
            Some(JWT_BEARER),
        )
        .await;
        assert_eq!(r.status(), 200);
        let token = r.text().await.unwrap();
        Client { http, url, token }
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("X-Snowflake-Authorization-Token-Type", "OAUTH");
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        Resp::read(r).await
    }

    pub(crate) async fn open(&self, channel: &str, body: Value) -> Resp {
        self.send(
            reqwest::Method::PUT,
            &format!("{BASE}/channels/{channel}"),
            Some(body),
        )
        .await
    }

    /// Opens and returns the continuation token.
    pub(crate) async fn open_ok(&self, channel: &str) -> String {
        self.open_on("P", channel).await
    }

    /// Opens `channel` and appends `ndjson` up to end token `end`; returns the next
    /// continuation token.
    pub(crate) async fn open_append_ok(&self, channel: &str, end: &str, ndjson: &str) -> String {
        let ct = self.open_ok(channel).await;
        self.append_ok(channel, &ct, end, ndjson).await
    }

    /// Opens `channel`, appends `ndjson` up to end token `end` and waits until `end` is
    /// committed; returns the channel's status.
    pub(crate) async fn commit_rows(&self, channel: &str, end: &str, ndjson: &str) -> Value {
        self.open_append_ok(channel, end, ndjson).await;
        self.wait_committed(channel, end).await
    }

    pub(crate) async fn append_raw(
        &self,
        channel: &str,
        query: &str,
        body: Vec<u8>,
        encoding: Option<&str>,
    ) -> Result<Resp, reqwest::Error> {
        let mut rb = self
            .http
            .post(format!(
                "{}{DATA}/channels/{channel}/rows?{query}",
                self.url
            ))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/x-ndjson")
            .body(body);
        if let Some(e) = encoding {
            rb = rb.header("Content-Encoding", e);
        }
        let r = rb.send().await?;
        Ok(Resp::read(r).await)
    }

    /// Appends NDJSON text (zstd-compressed like the official SDK).
    pub(crate) async fn append(
        &self,
        channel: &str,
        ct: &str,
        start: &str,
        end: &str,
        ndjson: &str,
    ) -> Resp {
        let q = format!(
            "startOffsetToken={start}&endOffsetToken={end}&continuationToken={ct}&requestId=x&retryCount=0"
        );
        let body = zstd::encode_all(ndjson.as_bytes(), 3).unwrap();
        self.append_raw(channel, &q, body, Some("zstd"))
            .await
            .unwrap()
    }

    /// An append with end token `end` that must succeed; returns the next continuation token.
    pub(crate) async fn append_ok(
        &self,
        channel: &str,
        ct: &str,
        end: &str,
        ndjson: &str,
    ) -> String {
        self.append(channel, ct, "", end, ndjson).await.next_token()
    }

    /// POSTs `body` as it is (no content type or encoding) to the data path `path` below
    /// `/v2/streaming/data/databases/DB/schemas/SCH/`, with the scoped token.
    pub(crate) async fn post_data(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/v2/streaming/data/databases/DB/schemas/SCH/{path}",
                self.url
            ))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST {BASE}:{action}` (`pipe-info`, `bulk-channel-status`) with the JSON `body`.
    pub(crate) async fn pipe_action(&self, action: &str, body: Value) -> Resp {
        self.send(
            reqwest::Method::POST,
            &format!("{BASE}:{action}"),
            Some(body),
        )
        .await
    }

    pub(crate) async fn status(&self, names: &[&str]) -> Value {
        let r = self
            .pipe_action("bulk-channel-status", json!({ "channel_names": names }))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["channel_statuses"].clone()
    }

    /// Opens `channel` on pipe `pipe` and returns the continuation token.
    pub(crate) async fn open_on(&self, pipe: &str, channel: &str) -> String {
        self.send(
            reqwest::Method::PUT,
            &format!("{}/channels/{channel}", pipe_path(pipe)),
            Some(json!({})),
        )
        .await
        .next_token()
    }

    /// Appends uncompressed `ndjson` on `pipe`/`channel` with end token `end`; returns the
    /// channel's status once `end` is committed.
    pub(crate) async fn append_on(
        &self,
        pipe: &str,
        channel: &str,
        ct: &str,
        end: &str,
        ndjson: &str,
    ) -> Value {
        let r = self
            .http
            .post(format!(
                "{}{}/channels/{channel}/rows?endOffsetToken={end}&continuationToken={ct}",
                self.url,
                pipe_path(pipe).replacen("/v2/streaming/", "/v2/streaming/data/", 1)
            ))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/x-ndjson")
            .body(ndjson.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_eq!(status, 200, "{}", r.text().await.unwrap());
        for _ in 0..400 {
            let r = self
                .send(
                    reqwest::Method::POST,
                    &format!("{}:bulk-channel-status", pipe_path(pipe)),
                    Some(json!({ "channel_names": [channel] })),
                )
                .await;
            let s = &r.body["channel_statuses"][channel];
            if s["last_committed_offset_token"] == json!(end) {
                return s.clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{pipe}/{channel} never committed {end}");
    }

    pub(crate) async fn wait_committed(&self, channel: &str, token: &str) -> Value {
        for _ in 0..200 {
            let s = self.status(&[channel]).await;
            if s[channel]["last_committed_offset_token"] == json!(token) {
                return s[channel].clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{channel} never committed {token}");
    }
}

/// NDJSON rows `{"ID":i,"NAME":"n<i>"}` for `range`.
pub(crate) fn rows(range: std::ops::Range<u32>) -> String {
    range
        .map(|i| format!("{{\"ID\":{i},\"NAME\":\"n{i}\"}}\n"))
        .collect()
}

/// Asserts that `sql`, run with [`Emulator::query`], answers the rows `expected`.
pub(crate) fn assert_query(emu: &Emulator, sql: &str, expected: Vec<Vec<Value>>) {
    assert_eq!(emu.query(sql).unwrap(), expected, "{sql}");
}

pub(crate) fn count(emu: &Emulator) -> i64 {
    emu.query("SELECT COUNT(*) FROM \"DB.SCH.T\"").unwrap()[0][0]
        .as_i64()
        .unwrap()
}

/// Spawns `cmd` with stdout and stderr piped; the child, its stdout (kept open, so that what it
/// prints later does not meet a closed pipe) and the first line it printed there.
pub(crate) fn spawn_first_line(
    cmd: &mut std::process::Command,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    String,
) {
    use std::io::BufRead as _;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    (child, out, line)
}

/// All that `child` (spawned by [`spawn_first_line`], ended) wrote to stderr.
pub(crate) fn stderr_of(child: &mut std::process::Child) -> String {
    use std::io::Read as _;
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}
