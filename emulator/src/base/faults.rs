//! Seeded, reproducible fault injection.
//!
//! A [`FaultPlan`] is a list of [`FaultRule`]s, read from JSON (`--faults FILE`) or built in code.
//! For every request the rules are tried in order: a rule whose endpoint (and channel filter)
//! matches counts the request, and fires when its trigger says so. Side effects (latency,
//! invalidation, sequencer bump) apply and evaluation continues; the first firing rule that
//! produces a response (status or lost ack) ends it. The only randomness is a ChaCha generator
//! seeded with the configured seed, drawn only for rules with a `probability`, so the same seed
//! and the same request sequence give the same faults.
//!
//! ```json
//! {"rules": [
//!   {"endpoint": "append_rows", "action": {"kind": "status", "status": 503,
//!    "bare_string": "ERR_GENERAL_EXCEPTION_RETRY_REQUEST"}, "every_nth": 5},
//!   {"endpoint": "append_rows", "action": {"kind": "lost_ack"}, "probability": 0.01},
//!   {"endpoint": "any", "action": {"kind": "latency", "ms": 20}, "max_times": 10}
//! ]}
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// An endpoint of the protocol, as named in fault rules and request records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `GET /v2/streaming/hostname`.
    Hostname,
    /// `POST /oauth/token`.
    Token,
    /// `POST …/pipes/{pipe}:pipe-info`.
    PipeInfo,
    /// `PUT …/channels/{channel}`.
    OpenChannel,
    /// `POST /v2/streaming/data/…/rows`.
    AppendRows,
    /// `POST …/pipes/{pipe}:bulk-channel-status`.
    BulkStatus,
    /// `DELETE …/channels/{channel}`.
    DropChannel,
    /// `POST /telemetry/send/sessionless`.
    Telemetry,
    /// The official SDK's file mode: an upload (S3 `PUT`) to the emulator's stage.
    StageUpload,
    /// The official SDK's file mode: `POST …/channels/{channel}/filebuffer`, a file's
    /// registration (not `append_rows`: a rule for row appends leaves it alone).
    FileBuffer,
    /// `GET /` and anything else.
    Other,
    /// Matches every endpoint (rules only).
    Any,
}

impl Endpoint {
    /// Whether a rule endpoint matches a request endpoint.
    fn matches(self, request: Endpoint) -> bool {
        self == Endpoint::Any || self == request
    }
}

/// What a firing rule does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status instead of handling the request. The body is, in order of
    /// precedence: `body` verbatim (with `content_type`, default `text/plain`), the JSON
    /// string `bare_string` (e.g. `"ERR_GENERAL_EXCEPTION_RETRY_REQUEST"`), or
    /// `{"code": code, "message": message}`.
    Status {
        /// HTTP status.
        status: u16,
        /// Error code for the JSON body.
        #[serde(default)]
        code: Option<String>,
        /// Message for the JSON body.
        #[serde(default)]
        message: Option<String>,
        /// Raw body, sent as is (e.g. HTML for a "misclassified" 404).
        #[serde(default)]
        body: Option<String>,
        /// Content type of a raw body.
        #[serde(default)]
        content_type: Option<String>,
        /// Body that is a bare JSON string.
        #[serde(default)]
        bare_string: Option<String>,
    },
    /// Handle the request normally, then close the connection without answering.
    LostAck,
    /// Wait this long, then continue.
    Latency {
        /// Milliseconds.
        ms: u64,
    },
    /// Mark the addressed channel `ERR_CHANNEL_MUST_BE_REOPENED`, then continue.
    InvalidateChannel,
    /// Bump the addressed channel's client sequencer (as if another client reopened it), then
    /// continue: the caller's continuation token becomes stale.
    BumpSequencer,
}

impl FaultAction {
    /// A `{"code","message"}` error response.
    pub fn status(status: u16, code: &str) -> Self {
        FaultAction::Status {
            status,
            code: Some(code.to_string()),
            message: Some(format!("injected fault {code}")),
            body: None,
            content_type: None,
            bare_string: None,
        }
    }

    /// A response whose body is the bare JSON string `"code"`.
    pub fn bare_string(status: u16, code: &str) -> Self {
        FaultAction::Status {
            status,
            code: None,
            message: None,
            body: None,
            content_type: None,
            bare_string: Some(code.to_string()),
        }
    }

    /// A response with a raw, non-JSON body.
    pub fn raw(status: u16, body: &str, content_type: &str) -> Self {
        FaultAction::Status {
            status,
            code: None,
            message: None,
            body: Some(body.to_string()),
            content_type: Some(content_type.to_string()),
            bare_string: None,
        }
    }

    fn is_terminal(&self) -> bool {
        matches!(self, FaultAction::Status { .. } | FaultAction::LostAck)
    }
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Which endpoint it applies to.
    pub endpoint: Endpoint,
    /// What it does.
    pub action: FaultAction,
    /// Only requests addressing this channel name (exact match).
    #[serde(default)]
    pub channel: Option<String>,
    /// Fire with this probability (seeded generator).
    #[serde(default)]
    pub probability: Option<f64>,
    /// Fire on every Nth matching request (counted after `after`).
    #[serde(default)]
    pub every_nth: Option<u64>,
    /// Let the first N matching requests through.
    #[serde(default)]
    pub after: Option<u64>,
    /// Fire at most this many times.
    #[serde(default)]
    pub max_times: Option<u64>,
}

impl FaultRule {
    /// A rule that fires on every matching request.
    pub fn new(endpoint: Endpoint, action: FaultAction) -> Self {
        Self {
            endpoint,
            action,
            channel: None,
            probability: None,
            every_nth: None,
            after: None,
            max_times: None,
        }
    }

    /// This rule, changed by `change`.
    fn with(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
        self
    }

    /// Fires at most `n` times.
    pub fn times(self, n: u64) -> Self {
        self.with(|r| r.max_times = Some(n))
    }

    /// Lets the first `n` matching requests through.
    pub fn after(self, n: u64) -> Self {
        self.with(|r| r.after = Some(n))
    }

    /// Fires on every `n`th matching request.
    pub fn every_nth(self, n: u64) -> Self {
        self.with(|r| r.every_nth = Some(n))
    }

    /// Fires with probability `p`.
    pub fn probability(self, p: f64) -> Self {
        self.with(|r| r.probability = Some(p))
    }

    /// Only for requests addressing this channel.
    pub fn on_channel(self, channel: &str) -> Self {
        self.with(|r| r.channel = Some(channel.to_string()))
    }
}

/// Error parsing a compact fault rule (`--fault`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault rule {spec:?}: {reason}. Expected ENDPOINT:KEY[=VALUE],... e.g. append_rows:status=503,bare=ERR_GENERAL_EXCEPTION_RETRY_REQUEST,every=5 or a JSON rule")]
pub struct FaultSpecError {
    spec: String,
    reason: String,
}

impl std::str::FromStr for FaultRule {
    type Err = FaultSpecError;

    /// Parses a rule from JSON (`{"endpoint": …}`) or the compact form
    /// `ENDPOINT:KEY[=VALUE],...` with keys `status`, `code`, `message`, `bare`, `body`,
    /// `content_type`, `lost_ack`, `latency` (ms), `invalidate`, `bump`, `p`, `every`,
    /// `after`, `times`, `channel`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| FaultSpecError {
            spec: spec.to_string(),
            reason,
        };
        let spec_t = spec.trim();
        if spec_t.starts_with('{') {
            return serde_json::from_str(spec_t).map_err(|e| err(e.to_string()));
        }
        let (endpoint, rest) = spec_t
            .split_once(':')
            .ok_or_else(|| err("missing ':' after the endpoint".into()))?;
        let endpoint: Endpoint =
            serde_json::from_value(serde_json::Value::String(endpoint.trim().into()))
                .map_err(|_| err(format!("unknown endpoint {endpoint:?}")))?;
        let mut rule = FaultRule::new(endpoint, FaultAction::LostAck);
        let mut action: Option<FaultAction> = None;
        let (mut status, mut code, mut message, mut bare, mut body, mut ctype) =
            (None, None, None, None, None, None);
        let num = |k: &str, v: Option<&str>| -> Result<u64, FaultSpecError> {
            v.and_then(|v| v.parse().ok())
                .ok_or_else(|| err(format!("{k} needs a whole number")))
        };
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (part, None),
            };
            match k {
                "status" => status = Some(num(k, v)? as u16),
                "code" => code = v.map(str::to_string),
                "message" => message = v.map(str::to_string),
                "bare" => bare = v.map(str::to_string),
                "body" => body = v.map(str::to_string),
                "content_type" => ctype = v.map(str::to_string),
                "lost_ack" => action = Some(FaultAction::LostAck),
                "latency" => action = Some(FaultAction::Latency { ms: num(k, v)? }),
                "invalidate" => action = Some(FaultAction::InvalidateChannel),
                "bump" => action = Some(FaultAction::BumpSequencer),
                "p" => {
                    rule.probability = Some(
                        v.and_then(|v| v.parse().ok())
                            .ok_or_else(|| err("p needs a probability like 0.1".into()))?,
                    )
                }
                "every" => rule.every_nth = Some(num(k, v)?),
                "after" => rule.after = Some(num(k, v)?),
                "times" => rule.max_times = Some(num(k, v)?),
                "channel" => rule.channel = v.map(str::to_string),
                other => return Err(err(format!("unknown key {other:?}"))),
            }
        }
        if let Some(status) = status {
            if action.is_some() {
                return Err(err(
                    "a rule has one action: status, lost_ack, latency, invalidate or bump".into(),
                ));
            }
            action = Some(FaultAction::Status {
                status,
                code,
                message,
                body,
                content_type: ctype,
                bare_string: bare,
            });
        }
        rule.action = action.ok_or_else(|| {
            err("no action (status=…, lost_ack, latency=…, invalidate, bump)".into())
        })?;
        Ok(rule)
    }
}

/// A list of fault rules (the JSON file format of `--faults`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Rules, tried in order.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// Parses the JSON form.
    ///
    /// # Errors
    /// When the text is not a valid plan; the message names the offending field.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[derive(Debug)]
struct RuleState {
    rule: FaultRule,
    seen: u64,
    fired: u64,
}

impl RuleState {
    /// A rule that has seen no request yet.
    fn new(rule: FaultRule) -> Self {
        Self {
            rule,
            seen: 0,
            fired: 0,
        }
    }
}

#[derive(Debug)]
struct FaultState {
    rules: Vec<RuleState>,
    rng: ChaCha8Rng,
    fired_total: u64,
}

/// The faults decided for one request.
#[derive(Debug, Default, Clone)]
pub(crate) struct Decision {
    pub latency: Duration,
    pub invalidate: bool,
    pub bump_sequencer: bool,
    pub terminal: Option<FaultAction>,
    pub names: Vec<String>,
}

/// A handle to add and clear fault rules at runtime. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FaultHandle {
    inner: Arc<Mutex<FaultState>>,
}

impl FaultHandle {
    pub(crate) fn new(plan: FaultPlan, seed: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(FaultState {
                rules: plan.rules.into_iter().map(RuleState::new).collect(),
                rng: ChaCha8Rng::seed_from_u64(seed),
                fired_total: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a rule.
    pub fn add(&self, rule: FaultRule) {
        self.lock().rules.push(RuleState::new(rule));
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Replaces all rules and reseeds the generator.
    pub fn set_plan(&self, plan: FaultPlan, seed: u64) {
        let mut st = self.lock();
        st.rules = plan.rules.into_iter().map(RuleState::new).collect();
        st.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    /// How many times any rule has fired.
    pub fn fired(&self) -> u64 {
        self.lock().fired_total
    }

    /// The rules and how often each fired.
    pub fn rules(&self) -> Vec<(FaultRule, u64)> {
        self.lock()
            .rules
            .iter()
            .map(|r| (r.rule.clone(), r.fired))
            .collect()
    }

    pub(crate) fn decide(&self, endpoint: Endpoint, channel: Option<&str>) -> Decision {
        let mut st = self.lock();
        let mut d = Decision::default();
        if st.rules.is_empty() {
            return d;
        }
        let FaultState {
            rules,
            rng,
            fired_total,
        } = &mut *st;
        for (i, r) in rules.iter_mut().enumerate() {
            if !r.rule.endpoint.matches(endpoint) {
                continue;
            }
            if let Some(c) = &r.rule.channel {
                if channel != Some(c.as_str()) {
                    continue;
                }
            }
            r.seen += 1;
            let after = r.rule.after.unwrap_or(0);
            if r.seen <= after {
                continue;
            }
            if let Some(n) = r.rule.every_nth {
                if n == 0 || (r.seen - after) % n != 0 {
                    continue;
                }
            }
            if let Some(max) = r.rule.max_times {
                if r.fired >= max {
                    continue;
                }
            }
            if let Some(p) = r.rule.probability {
                if rng.gen::<f64>() >= p {
                    continue;
                }
            }
            r.fired += 1;
            *fired_total += 1;
            d.names
                .push(format!("rule#{i}:{}", action_name(&r.rule.action)));
            match &r.rule.action {
                FaultAction::Latency { ms } => d.latency += Duration::from_millis(*ms),
                FaultAction::InvalidateChannel => d.invalidate = true,
                FaultAction::BumpSequencer => d.bump_sequencer = true,
                a if a.is_terminal() => {
                    d.terminal = Some(a.clone());
                    break;
                }
                _ => {}
            }
        }
        d
    }
}

fn action_name(a: &FaultAction) -> String {
    match a {
        FaultAction::Status { status, code, .. } => match code {
            Some(c) => format!("{status} {c}"),
            None => status.to_string(),
        },
        FaultAction::LostAck => "lost_ack".into(),
        FaultAction::Latency { ms } => format!("latency {ms}ms"),
        FaultAction::InvalidateChannel => "invalidate_channel".into(),
        FaultAction::BumpSequencer => "bump_sequencer".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64) -> Vec<bool> {
        let plan = FaultPlan {
            rules: vec![FaultRule::new(Endpoint::AppendRows, FaultAction::LostAck).probability(0.3)],
        };
        let h = FaultHandle::new(plan, seed);
        (0..200)
            .map(|_| h.decide(Endpoint::AppendRows, None).terminal.is_some())
            .collect()
    }

    #[test]
    fn same_seed_same_faults() {
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let fired = run(7).iter().filter(|b| **b).count();
        assert!((30..90).contains(&fired), "fired {fired} of 200 at p=0.3");
    }

    #[test]
    fn after_every_nth_and_max_times() {
        let h = FaultHandle::new(FaultPlan::default(), 0);
        h.add(
            FaultRule::new(Endpoint::OpenChannel, FaultAction::status(500, "X"))
                .after(2)
                .every_nth(2)
                .times(2),
        );
        let fired: Vec<bool> = (0..10)
            .map(|_| h.decide(Endpoint::OpenChannel, None).terminal.is_some())
            .collect();
        assert_eq!(
            fired,
            vec![false, false, false, true, false, true, false, false, false, false]
        );
        assert!(h.decide(Endpoint::AppendRows, None).terminal.is_none());
    }

    #[test]
    fn side_effects_accumulate_and_channel_filter() {
        let h = FaultHandle::new(FaultPlan::default(), 0);
        h.add(FaultRule::new(
            Endpoint::Any,
            FaultAction::Latency { ms: 5 },
        ));
        h.add(
            FaultRule::new(Endpoint::AppendRows, FaultAction::InvalidateChannel).on_channel("c1"),
        );
        let d = h.decide(Endpoint::AppendRows, Some("c2"));
        assert_eq!(d.latency, Duration::from_millis(5));
        assert!(!d.invalidate);
        let d = h.decide(Endpoint::AppendRows, Some("c1"));
        assert!(d.invalidate);
        assert_eq!(h.fired(), 3);
    }

    #[test]
    fn compact_rule_specs() {
        let r: FaultRule =
            "append_rows:status=503,bare=ERR_GENERAL_EXCEPTION_RETRY_REQUEST,every=5"
                .parse()
                .unwrap();
        assert_eq!(r.endpoint, Endpoint::AppendRows);
        assert_eq!(r.every_nth, Some(5));
        assert_eq!(
            r.action,
            FaultAction::bare_string(503, "ERR_GENERAL_EXCEPTION_RETRY_REQUEST")
        );
        let r: FaultRule = "open_channel:status=409,code=ERR_OPEN_CHANNEL_IN_PROGRESS,times=2"
            .parse()
            .unwrap();
        assert_eq!(r.max_times, Some(2));
        let r: FaultRule = "any:latency=20,p=0.5".parse().unwrap();
        assert_eq!(r.action, FaultAction::Latency { ms: 20 });
        assert_eq!(r.probability, Some(0.5));
        let r: FaultRule = "append_rows:lost_ack,after=3,channel=c1".parse().unwrap();
        assert_eq!(
            (r.action, r.after, r.channel.as_deref()),
            (FaultAction::LostAck, Some(3), Some("c1"))
        );
        let r: FaultRule = r#"{"endpoint":"drop_channel","action":{"kind":"bump_sequencer"}}"#
            .parse()
            .unwrap();
        assert_eq!(r.action, FaultAction::BumpSequencer);
        for bad in [
            "nope:lost_ack",
            "append_rows",
            "append_rows:every=2",
            "append_rows:status=x",
            "append_rows:wat",
        ] {
            assert!(bad.parse::<FaultRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn plan_json_round_trip() {
        let text = r#"{"rules":[
            {"endpoint":"append_rows","action":{"kind":"status","status":503,"bare_string":"ERR_GENERAL_EXCEPTION_RETRY_REQUEST"},"every_nth":5},
            {"endpoint":"open_channel","action":{"kind":"status","status":409,"code":"ERR_OPEN_CHANNEL_IN_PROGRESS"},"max_times":1},
            {"endpoint":"drop_channel","action":{"kind":"status","status":404,"body":"<html>nope</html>","content_type":"text/html"}},
            {"endpoint":"any","action":{"kind":"latency","ms":20}},
            {"endpoint":"bulk_status","action":{"kind":"bump_sequencer"},"channel":"c"}
        ]}"#;
        let plan = FaultPlan::from_json(text).unwrap();
        assert_eq!(plan.rules.len(), 5);
        assert_eq!(plan.rules[0].every_nth, Some(5));
        let again = FaultPlan::from_json(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert_eq!(plan, again);
        assert!(FaultPlan::from_json(
            r#"{"rules":[{"endpoint":"nope","action":{"kind":"lost_ack"}}]}"#
        )
        .is_err());
    }
}
