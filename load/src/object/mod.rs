//! Objects in a bucket as inputs: `s3://`, `gs://`, `az://` (and `abfs://`, `adl://`), and
//! `https://`/`http://` URLs, through the `object_store` crate.
//!
//! **Credentials** are each store's usual chain as `object_store` implements it (read when
//! the run starts): S3 `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then a
//! web identity token (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, EKS), then the ECS
//! container credentials, then the EC2 instance metadata (IMDSv2); `AWS_REGION`,
//! `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` for S3-compatible servers. Shared
//! `~/.aws/config` profiles are NOT read (`object_store` has no profile support): export the
//! profile's keys. GCS `GOOGLE_SERVICE_ACCOUNT` (a key file), else the application default
//! credentials file, else the metadata server. Azure `AZURE_STORAGE_ACCOUNT_NAME` with
//! `AZURE_STORAGE_ACCOUNT_KEY`, a SAS, a client secret or federated token
//! (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, …), else the instance metadata. `https://`: none.
//!
//! **Which objects.** A URL ending in `/` is every object under that prefix; one with `*` or
//! `?` in its key is a glob (`glob.rs`) over a listing of its fixed part; else the one object
//! it names (a HEAD). A listing stops with an error past [`MAX_LISTED`] entries, and more than
//! [`MAX_OBJECTS`] matches are refused (name a narrower prefix, or split with `--shard`).
//!
//! **Identity.** An object's name (`name`, the URL with the listed key) is its channel's name
//! and shard key, as a local file's canonical path is; its tokens carry its size and ETag (and
//! version), not its first bytes (`token::ObjectTag`): an object overwritten since (a new
//! ETag) is loaded anew from its start. Every read is conditional on that ETag (and version),
//! so an object overwritten during the run fails its read instead of mixing two contents.
//!
//! **Reading** (`spool.rs`): the byte ranges the run needs, fetched by ranged GETs into a
//! sparse local file that the file readers then read as they read any file. A large NDJSON or
//! Parquet object is cut into ranges as a file of the same bytes is (`ranges.rs` here, found
//! by ranged GETs; tokens `obj1r:`), each lane fetching one range at a time; a CSV object is
//! loaded whole.

pub(crate) mod glob;
pub(crate) mod ranges;
mod s3_list;
pub(crate) mod spool;
mod spool_dir;
pub(crate) mod store_error;

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use futures::TryStreamExt as _;
use object_store::path::Path as StorePath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreScheme};

use crate::token::ObjectTag;

/// The most listing entries read for one URL (a listing that goes on past it is refused, not
/// read forever).
pub(crate) const MAX_LISTED: usize = 200_000;

/// The most objects one URL may name.
pub(crate) const MAX_OBJECTS: usize = 100_000;

/// One object to load.
pub(crate) struct Remote {
    /// `<URL up to the listed prefix><key below it>`: shown, the channel's and shard's key.
    pub name: String,
    /// Its store.
    pub store: Arc<dyn ObjectStore>,
    /// Its size, ETag and version when listed.
    pub meta: ObjectMeta,
    /// The identity its tokens carry.
    pub tag: ObjectTag,
}

/// Its name and identity only: the store's own `Debug` would show its configuration, and not
/// every store's credentials redact themselves there.
impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// What a URL names: its objects, and those under it that cannot be loaded.
pub(crate) struct Resolved {
    pub remotes: Vec<Remote>,
    /// Objects under a listed prefix skipped (`s3_list.rs`): each one's URL and why.
    pub skipped: Vec<SkippedObject>,
}

/// An object under a listed prefix that is not loaded.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct SkippedObject {
    /// Its URL (the listed base and its key), as the store sent the key.
    pub url: String,
    pub reason: String,
}

/// Whether a command-line input names an object (a URL with a scheme), not a local path.
pub(crate) fn is_url(input: &str) -> bool {
    [
        "s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://", "adl://", "azure://",
    ]
    .iter()
    .chain(&["https://", "http://"])
    .any(|s| {
        input
            .get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
    })
}

/// The objects `url` names, sorted by name, and those under it an S3 listing skipped.
///
/// # Errors
/// When the URL cannot be parsed, the store cannot be built (no credentials), the listing or
/// HEAD fails, passes the caps, or names nothing.
pub(crate) async fn resolve(url: &str) -> Result<Resolved> {
    // A glob's `?` would be a URL query: only the part before the first glob character is
    // parsed as a URL; the rest is the key pattern.
    let fixed_end = url.find(['*', '?']).unwrap_or(url.len());
    let base_end = url[..fixed_end].rfind('/').map_or(url.len(), |i| i + 1);
    let base_end = if glob::has_glob(url) {
        base_end
    } else {
        url.len()
    };
    let (base, rest) = url.split_at(base_end);
    let parsed = url::Url::parse(base).with_context(|| format!("cannot parse the URL {base}"))?;
    let (scheme, key) = key_of(&parsed).with_context(|| format!("{url}: not a bucket URL"))?;
    let (store, lister) =
        store(&scheme, &parsed).with_context(|| format!("{url}: cannot reach the store"))?;
    let listing = |pattern: Option<String>| {
        let (store, lister, key) = (&store, lister.as_ref(), &key);
        async move {
            match lister {
                Some(lister) => list_s3(lister, key, pattern.as_deref(), url).await,
                None => Ok((list(store, key, pattern.as_deref(), url).await?, Vec::new())),
            }
        }
    };
    let (mut found, skipped) = if !rest.is_empty() {
        listing(Some(join(key.as_ref(), rest))).await?
    } else if url.ends_with('/') || key.as_ref().is_empty() {
        listing(None).await?
    } else {
        let meta = store.head(&key).await.map_err(|e| {
            anyhow::anyhow!(store_error::explain(&format!("cannot read {url}"), &e))
        })?;
        (vec![meta], Vec::new())
    };
    if found.is_empty() && skipped.is_empty() {
        bail!("{url} names no object: check the URL (a prefix ends with `/`)");
    }
    found.sort_by(|a, b| a.location.cmp(&b.location));
    let root = if rest.is_empty() && !url.ends_with('/') {
        None
    } else {
        Some(base)
    };
    let remotes = found
        .into_iter()
        .map(|meta| {
            let name = match root {
                Some(root) => format!("{root}{}", below(&key, &meta.location)),
                None => url.to_owned(),
            };
            let tag = ObjectTag::of(&meta)?;
            Ok(Remote {
                name,
                store: Arc::clone(&store),
                meta,
                tag,
            })
        })
        .collect::<Result<_>>()?;
    let base = root.unwrap_or(url);
    let skipped = skipped
        .into_iter()
        .map(|s| SkippedObject {
            url: format!("{base}{}", below_key(key.as_ref(), &s.key)),
            reason: s.reason,
        })
        .collect();
    Ok(Resolved { remotes, skipped })
}

/// `key` below `prefix`, as it follows the URL's base (a key that cannot be a path).
fn below_key<'k>(prefix: &str, key: &'k str) -> &'k str {
    if prefix.is_empty() {
        return key;
    }
    key.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(key)
}

/// As [`list`], through this crate's own S3 listing: keys `object_store` cannot read are
/// skipped (those the pattern matches), not an error for the whole prefix.
async fn list_s3(
    lister: &s3_list::Lister,
    prefix: &StorePath,
    pattern: Option<&str>,
    url: &str,
) -> Result<(Vec<ObjectMeta>, Vec<s3_list::Skipped>)> {
    let mut kept = Kept::new(pattern, url);
    lister
        .list(prefix.as_ref(), url, &mut |entry| kept.entry(entry))
        .await?;
    Ok((kept.objects, kept.skipped))
}

/// What a listing keeps, entry by entry, within the caps: the objects the pattern matches (at
/// most [`MAX_OBJECTS`]) and the skipped keys it matches, of at most [`MAX_LISTED`] entries.
struct Kept<'a> {
    pattern: Option<&'a str>,
    url: &'a str,
    seen: usize,
    objects: Vec<ObjectMeta>,
    skipped: Vec<s3_list::Skipped>,
}

impl<'a> Kept<'a> {
    fn new(pattern: Option<&'a str>, url: &'a str) -> Self {
        Self {
            pattern,
            url,
            seen: 0,
            objects: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Takes one listed entry.
    ///
    /// # Errors
    /// Past [`MAX_LISTED`] entries or [`MAX_OBJECTS`] matching objects.
    fn entry(&mut self, entry: s3_list::Entry) -> Result<()> {
        let url = self.url;
        self.seen += 1;
        if self.seen > MAX_LISTED {
            bail!(
                "listing {url} returned more than {MAX_LISTED} entries, the most snowpipe load \
                 reads: name a narrower prefix"
            );
        }
        let matches = |key: &str| self.pattern.is_none_or(|p| glob::matches(p, key));
        match entry {
            s3_list::Entry::Object(meta) if matches(meta.location.as_ref()) => {
                if self.objects.len() == MAX_OBJECTS {
                    bail!(
                        "{url} names more than {MAX_OBJECTS} objects, the most one run loads: \
                         name a narrower prefix or glob"
                    );
                }
                self.objects.push(meta);
            }
            s3_list::Entry::Skipped(s) if matches(&s.key) => self.skipped.push(s),
            _ => {}
        }
        Ok(())
    }
}

/// The store kind of `url` and the key it names. `az://CONTAINER/KEY` (and `abfs://`,
/// `abfss://`, `adl://`, `azure://`) is read as `object_store`'s Azure builder reads it (the
/// container is the host); its URL parser would take the key's first segment for the
/// container (`az://ACCOUNT/CONTAINER/KEY`) and the two would disagree.
///
/// # Errors
/// When the scheme is not a store's, or the key is not a valid path.
fn key_of(url: &url::Url) -> Result<(ObjectStoreScheme, StorePath)> {
    let (scheme, path) = ObjectStoreScheme::parse(url)?;
    match scheme {
        ObjectStoreScheme::MicrosoftAzure if !url.scheme().starts_with("http") => {
            Ok((scheme, StorePath::from_url_path(url.path())?))
        }
        _ => Ok((scheme, path)),
    }
}

/// `prefix/pattern` (a key pattern under the listed prefix).
fn join(prefix: &str, pattern: &str) -> String {
    if prefix.is_empty() {
        pattern.to_owned()
    } else {
        format!("{prefix}/{pattern}")
    }
}

/// `location` below `prefix`, as it follows the URL's base.
fn below(prefix: &StorePath, location: &StorePath) -> String {
    let (p, l) = (prefix.as_ref(), location.as_ref());
    if p.is_empty() {
        return l.to_owned();
    }
    l.strip_prefix(p)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(l)
        .to_owned()
}

/// The objects under `prefix` (matching `pattern`, a glob over whole keys), within the caps.
async fn list(
    store: &Arc<dyn ObjectStore>,
    prefix: &StorePath,
    pattern: Option<&str>,
    url: &str,
) -> Result<Vec<ObjectMeta>> {
    let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
    let mut entries = store.list(prefix);
    let mut kept = Kept::new(pattern, url);
    while let Some(meta) = entries
        .try_next()
        .await
        .map_err(|e| anyhow::anyhow!(store_error::explain(&format!("cannot list {url}"), &e)))?
    {
        kept.entry(s3_list::Entry::Object(meta))?;
    }
    Ok(kept.objects)
}

/// The store of `url`, with its cloud's credential chain from the environment and
/// `object_store`'s client defaults (a 5 s connect and a 30 s request timeout, retries with
/// backoff for at most 3 minutes, at most 10 redirects).
fn store(
    scheme: &ObjectStoreScheme,
    url: &url::Url,
) -> Result<(Arc<dyn ObjectStore>, Option<s3_list::Lister>)> {
    use object_store::{aws, azure, gcp, http};
    Ok((
        match scheme {
            ObjectStoreScheme::AmazonS3 => {
                let builder = aws::AmazonS3Builder::from_env().with_url(url.as_str());
                let (lister, store) = s3_list::Lister::new(builder, url)?;
                return Ok((store, Some(lister)));
            }
            ObjectStoreScheme::GoogleCloudStorage => Arc::new(
                gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .build()?,
            ),
            ObjectStoreScheme::MicrosoftAzure => Arc::new(
                azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .build()?,
            ),
            ObjectStoreScheme::Http => Arc::new(
                http::HttpBuilder::new()
                    .with_url(&url[..url::Position::BeforePath])
                    .build()?,
            ),
            other => bail!("{other:?} URLs are not read: give a local path instead"),
        },
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remotes_debug_shows_no_store_configuration() {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("b")
            .with_region("us-east-1")
            .with_access_key_id("AKIDEXAMPLE")
            .with_secret_access_key("wJalrXUtnFEMIsecret")
            .build()
            .unwrap();
        let meta = ObjectMeta {
            location: StorePath::from("k.csv"),
            last_modified: chrono::DateTime::UNIX_EPOCH,
            size: 3,
            e_tag: Some("e".to_owned()),
            version: None,
        };
        let remote = Remote {
            name: "s3://b/k.csv".to_owned(),
            store: Arc::new(store),
            tag: ObjectTag::of(&meta).unwrap(),
            meta,
        };
        let shown = format!("{remote:?}");
        assert!(shown.contains("s3://b/k.csv"), "{shown}");
        assert!(
            !shown.contains("AKIDEXAMPLE") && !shown.contains("secret"),
            "{shown}"
        );
    }

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("s3://b/k") && is_url("GS://b/k") && is_url("https://h/x.csv"));
        assert!(!is_url("/data/s3://x") && !is_url("file.csv") && !is_url("-"));
    }

    #[test]
    fn each_scheme_names_its_key() {
        let key = |u: &str| key_of(&url::Url::parse(u).unwrap()).unwrap().1.to_string();
        assert_eq!(key("s3://bucket/exports/a.csv"), "exports/a.csv");
        assert_eq!(key("gs://bucket/exports/a.csv"), "exports/a.csv");
        assert_eq!(key("az://container/exports/a.csv"), "exports/a.csv");
        assert_eq!(
            key("abfss://c@acct.dfs.core.windows.net/e/a.csv"),
            "e/a.csv"
        );
        assert_eq!(
            key("https://acct.blob.core.windows.net/c/e/a.csv"),
            "e/a.csv"
        );
        assert_eq!(key("https://example.com/data/a%20b.csv"), "data/a b.csv");
        assert_eq!(key("s3://bucket/100%25.csv"), "100%.csv", "decoded once");
        assert!(key_of(&url::Url::parse("ftp://h/x").unwrap()).is_err());
    }

    #[test]
    fn a_listed_key_follows_the_urls_base() {
        let p = StorePath::from("exports");
        assert_eq!(below(&p, &StorePath::from("exports/a/b.csv")), "a/b.csv");
        assert_eq!(
            below(&StorePath::from(""), &StorePath::from("x.csv")),
            "x.csv"
        );
        assert_eq!(join("", "*.csv"), "*.csv");
        assert_eq!(join("e", "2026-*/p.csv"), "e/2026-*/p.csv");
    }
}
