//! S3 listings read here, not through `object_store`: its listing turns one key it cannot
//! represent as a path (a `.` or `..` segment, an empty segment, a control character) into an
//! error for the whole prefix, at every rerun. Here each page of `ListObjectsV2` (signed with
//! `object_store`'s own SigV4 authorizer and the store's own credential chain, so credentials
//! and endpoints are the store's) is read as data: a key `object_store` cannot read is
//! [`Skipped`], named escaped and why, and every other object loads. GCS and Azure are listed
//! by `object_store` as before.
//!
//! Keys come URL-encoded (`encoding-type=url`), so a control character is no problem for the
//! XML. Caps, each checked before what it bounds is held: a page's body [`MAX_PAGE_BYTES`] (S3
//! sends at most 1,000 keys of at most 1,024 bytes), a key [`MAX_KEY_BYTES`] (a longer one is
//! skipped), [`MAX_PAGES`] pages (a server that answers "truncated" forever); the listing's
//! entries are capped by the caller (`MAX_LISTED`). Each request: 5 s to connect, 30 s in all,
//! three tries on a transport error or a 5xx.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer};
use object_store::path::Path as StorePath;
use object_store::{ClientConfigKey, ObjectMeta};
use serde::Deserialize;

use super::store_error;

/// The most bytes of one listing page read.
pub(crate) const MAX_PAGE_BYTES: usize = 8 << 20;

/// The longest key taken (S3's own limit); a longer one is skipped.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// The most pages one listing reads.
pub(crate) const MAX_PAGES: usize = 1_000;

/// How many times a page is asked for (a transport error or a 5xx is tried again).
const TRIES: u32 = 3;

/// An object under the prefix that is not loaded: its key as the store sent it, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Skipped {
    pub key: String,
    pub reason: String,
}

/// One listed entry: an object to load, or one skipped.
#[derive(Debug)]
pub(crate) enum Entry {
    Object(ObjectMeta),
    Skipped(Skipped),
}

/// What lists a bucket: where, as whom, over which client.
pub(crate) struct Lister {
    client: reqwest::Client,
    bucket_endpoint: String,
    region: String,
    request_payer: bool,
    store: Arc<AmazonS3>,
}

impl Lister {
    /// The lister of `builder`'s bucket (`AmazonS3Builder::from_env().with_url(…)`), and the
    /// store it was built into (the objects are read through it).
    ///
    /// # Errors
    /// When the store cannot be built, or its endpoint is plain HTTP without `AWS_ALLOW_HTTP`.
    pub(crate) fn new(builder: AmazonS3Builder, url: &url::Url) -> Result<(Self, Arc<AmazonS3>)> {
        let store = Arc::new(builder.clone().build()?);
        let value = |key| builder.get_config_value(&key);
        let bucket = value(AmazonS3ConfigKey::Bucket)
            .or_else(|| url.host_str().map(str::to_owned))
            .context("no bucket in the URL")?;
        let region = value(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        let virtual_hosted = value(AmazonS3ConfigKey::VirtualHostedStyleRequest)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let bucket_endpoint = match (value(AmazonS3ConfigKey::Endpoint), virtual_hosted) {
            (Some(endpoint), true) => endpoint,
            (Some(endpoint), false) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        let allow_http = value(AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if bucket_endpoint.starts_with("http://") && !allow_http {
            bail!("{}", store_error::PLAIN_HTTP);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot make the listing's HTTP client")?;
        let request_payer =
            value(AmazonS3ConfigKey::RequestPayer).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let lister = Self {
            client,
            bucket_endpoint,
            region,
            request_payer,
            store: Arc::clone(&store),
        };
        Ok((lister, store))
    }

    /// Hands every entry under `prefix` (a key prefix; `""`: the bucket), in the store's order,
    /// to `each`, page by page (no page is held past its entries).
    ///
    /// # Errors
    /// When a page cannot be had or read (one line naming the cause and the fix), a cap is
    /// passed, or `each` fails.
    ///
    /// # Cancellation
    /// Dropping the future abandons the listing; nothing was changed.
    pub(crate) async fn list(
        &self,
        prefix: &str,
        url: &str,
        each: &mut dyn FnMut(Entry) -> Result<()>,
    ) -> Result<()> {
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.page(&prefix, token.as_deref()).await.map_err(|e| {
                anyhow::anyhow!(store_error::explain(&format!("cannot list {url}"), &e))
            })?;
            for contents in page.contents {
                each(entry(contents))?;
            }
            match page.next_continuation_token {
                Some(next) if page.is_truncated => token = Some(next),
                _ => return Ok(()),
            }
        }
        bail!(
            "listing {url} went on past {MAX_PAGES} pages (the server says there is more \
             each time): name a narrower prefix"
        )
    }

    /// One page, signed, tried up to [`TRIES`] times.
    async fn page(&self, prefix: &str, token: Option<&str>) -> object_store::Result<ListPage> {
        let mut url = url::Url::parse(&self.bucket_endpoint).map_err(generic)?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(t) = token {
                q.append_pair("continuation-token", t);
            }
            q.append_pair("encoding-type", "url");
            q.append_pair("list-type", "2");
            if !prefix.is_empty() {
                q.append_pair("prefix", prefix);
            }
        }
        let mut last = None;
        for attempt in 0..TRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            match self.get(&url).await {
                Ok(page) => return Ok(page),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Again(e)) => last = Some(e),
            }
        }
        Err(last.expect("at least one try"))
    }

    async fn get(&self, url: &url::Url) -> Result<ListPage, Failure> {
        let credential = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(Failure::Final)?;
        let mut request = http::Request::builder()
            .method(http::Method::GET)
            .uri(url.as_str())
            .body(object_store::client::HttpRequestBody::empty())
            .map_err(|e| Failure::Final(generic(e)))?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .with_request_payer(self.request_payer)
            .authorize(&mut request, None);
        let mut sent = self.client.get(url.as_str());
        for (name, value) in request.headers() {
            sent = sent.header(name, value);
        }
        let mut response = sent
            .send()
            .await
            .map_err(|e| Failure::Again(generic(format!("GET {}: {e}", self.bucket_endpoint))))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Again(generic(e)))?
        {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(Failure::Final(generic(format!(
                    "a listing page of more than {} MiB: not an S3 listing",
                    MAX_PAGE_BYTES >> 20
                ))));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            let e = generic(format!("{status}: {text}"));
            return Err(if status.is_server_error() {
                Failure::Again(e)
            } else {
                Failure::Final(e)
            });
        }
        quick_xml::de::from_str(&text).map_err(|e| {
            Failure::Final(generic(format!(
                "the listing is not an S3 ListBucketResult: {e}"
            )))
        })
    }
}

/// A page's failure: worth another try, or not.
enum Failure {
    Again(object_store::Error),
    Final(object_store::Error),
}

fn generic(e: impl ToString) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: e.to_string().into(),
    }
}

/// One `ListBucketResult` page.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPage {
    #[serde(default)]
    contents: Vec<Contents>,
    #[serde(default)]
    is_truncated: bool,
    next_continuation_token: Option<String>,
}

/// One object of a page.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Contents {
    key: String,
    size: u64,
    last_modified: chrono::DateTime<chrono::Utc>,
    #[serde(rename = "ETag")]
    e_tag: Option<String>,
}

/// `contents` as an object to load, or skipped saying why.
fn entry(contents: Contents) -> Entry {
    let key = decode(&contents.key);
    let skipped = |reason: String| {
        Entry::Skipped(Skipped {
            key: key.clone(),
            reason,
        })
    };
    if key.len() > MAX_KEY_BYTES {
        return skipped(format!(
            "its key is {} bytes, longer than S3's {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    match StorePath::parse(&key) {
        Ok(location) => Entry::Object(ObjectMeta {
            location,
            last_modified: contents.last_modified,
            size: contents.size,
            e_tag: contents.e_tag,
            version: None,
        }),
        Err(e) => skipped(format!(
            "its key is not a path snowpipe load can read ({}): rename the object, or name a \
             prefix or glob that leaves it out",
            crate::names::shown(std::path::Path::new(&e.to_string()))
        )),
    }
}

/// A key as `encoding-type=url` sends it, decoded: `%XX` and `+` (a space); bytes that are not
/// UTF-8 are replaced (such a key is skipped as not a path anyway).
fn decode(encoded: &str) -> String {
    let plus = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_read_and_its_keys_decoded_and_judged() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>p%2F</Prefix><KeyCount>3</KeyCount><IsTruncated>true</IsTruncated>
  <NextContinuationToken>tok</NextContinuationToken>
  <Contents><Key>p/a+b%2Bc.ndjson</Key><LastModified>2026-11-28T10:00:00.000Z</LastModified>
    <ETag>&quot;e1&quot;</ETag><Size>12</Size></Contents>
  <Contents><Key>p/..%2Fx.ndjson</Key><LastModified>2026-11-28T10:00:00.000Z</LastModified>
    <ETag>&quot;e2&quot;</ETag><Size>3</Size></Contents>
  <Contents><Key>p/%1B%5B31mred.ndjson</Key><LastModified>2026-11-28T10:00:00Z</LastModified>
    <Size>4</Size></Contents>
</ListBucketResult>"#;
        let page: ListPage = quick_xml::de::from_str(xml).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_continuation_token.as_deref(), Some("tok"));
        let entries: Vec<Entry> = page.contents.into_iter().map(entry).collect();
        match &entries[0] {
            Entry::Object(m) => {
                assert_eq!(m.location.as_ref(), "p/a b+c.ndjson");
                assert_eq!((m.size, m.e_tag.as_deref()), (12, Some("\"e1\"")));
            }
            other => panic!("{other:?}"),
        }
        for (i, key) in [(1, "p/../x.ndjson"), (2, "p/\u{1b}[31mred.ndjson")] {
            match &entries[i] {
                Entry::Skipped(s) => {
                    assert_eq!(s.key, key);
                    assert!(s.reason.contains("rename the object"), "{}", s.reason);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_key_past_s3s_length_is_skipped_before_it_is_judged() {
        let e = entry(Contents {
            key: "k".repeat(MAX_KEY_BYTES + 1),
            size: 1,
            last_modified: chrono::DateTime::UNIX_EPOCH,
            e_tag: None,
        });
        assert!(matches!(e, Entry::Skipped(s) if s.reason.contains("longer than S3's 1024")));
    }
}
