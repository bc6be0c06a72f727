//! `MAX_KEY_CHANNELS`: the Lambda handler's own cap on a pipe's channels, below the service's
//! 2,000 (closed channels count there too), for `PARALLELIZATION_FACTOR` > 1 where every
//! partition key of every shard has a channel on each pipe.
//!
//! Before it opens a channel this instance does not hold, the handler asks the pipe's channels
//! (`SHOW CHANNELS IN PIPE`, through the SQL API with the same key) at most once a minute per
//! pipe, and counts the ones it admitted since. A channel the listing holds is reopened freely
//! (it is counted already); a new one past the cap is refused with [`CapReached`], which the
//! handler answers as a named error and a metric, never as a silent retry. Several instances
//! may each admit a new channel between two listings: the cap can be passed by at most one
//! channel per instance and minute, which is why it should sit below the service's limit
//! (docs/kinesis.md "Channel budget").

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use snowpipe_streaming::sql::SqlClient;
use tokio::sync::Mutex;

/// A pipe's listing is asked again after this long.
pub const RELIST_AFTER: Duration = Duration::from_secs(60);

/// A new channel would take the pipe past `MAX_KEY_CHANNELS`.
#[derive(Debug)]
pub struct CapReached {
    /// `DB.SCHEMA.PIPE`.
    pub pipe: String,
    /// The channels listed and admitted since.
    pub held: usize,
    /// The cap.
    pub max: usize,
    /// The channel refused.
    pub channel: String,
}

impl std::fmt::Display for CapReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "key channel cap reached: pipe {} holds {} channels and MAX_KEY_CHANNELS is {}, so \
             channel {} is not opened",
            self.pipe, self.held, self.max, self.channel
        )
    }
}

impl std::error::Error for CapReached {}

/// The channels of one pipe, as last listed plus those admitted since.
struct Listing {
    at: Instant,
    names: HashSet<String>,
}

/// The cap and what the pipes hold (see the module docs).
pub struct ChannelCap {
    sql: SqlClient,
    max: usize,
    listings: Mutex<HashMap<String, Listing>>,
}

impl ChannelCap {
    /// A cap of `max` channels a pipe, counted through `sql`.
    pub fn new(sql: SqlClient, max: usize) -> Self {
        ChannelCap {
            sql,
            max,
            listings: Mutex::new(HashMap::new()),
        }
    }

    /// Lets channel `channel` of pipe `database.schema.pipe` open: it is listed already, or
    /// the pipe holds fewer than the cap (the channel then counts).
    ///
    /// # Errors
    /// [`CapReached`] past the cap; the SQL API's error when the pipe cannot be listed (the
    /// channel is not opened then either: an unknown count is no room).
    ///
    /// # Cancellation
    /// Dropping the future stops the listing; nothing is counted.
    pub async fn admit(
        &self,
        database: &str,
        schema: &str,
        pipe: &str,
        channel: &str,
    ) -> Result<()> {
        let qualified = format!("{database}.{schema}.{pipe}");
        let mut listings = self.listings.lock().await;
        let stale = listings
            .get(&qualified)
            .is_none_or(|l| l.at.elapsed() >= RELIST_AFTER);
        if stale
            && !listings
                .get(&qualified)
                .is_some_and(|l| l.names.contains(channel))
        {
            let names = self.list(database, schema, pipe).await?;
            listings.insert(
                qualified.clone(),
                Listing {
                    at: Instant::now(),
                    names,
                },
            );
        }
        let listing = listings.get_mut(&qualified).expect("listed above");
        if listing.names.contains(channel) {
            return Ok(());
        }
        if listing.names.len() >= self.max {
            return Err(CapReached {
                pipe: qualified,
                held: listing.names.len(),
                max: self.max,
                channel: channel.to_owned(),
            }
            .into());
        }
        listing.names.insert(channel.to_owned());
        Ok(())
    }

    /// The names of the pipe's channels.
    async fn list(&self, database: &str, schema: &str, pipe: &str) -> Result<HashSet<String>> {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let statement = format!(
            "SHOW CHANNELS IN PIPE {}.{}.{}",
            quote(database),
            quote(schema),
            quote(pipe)
        );
        let result = self.sql.query(&statement).await.with_context(|| {
            format!(
                "cannot count the channels of pipe {database}.{schema}.{pipe} for \
                 MAX_KEY_CHANNELS ({statement}): the role needs the SQL API and MONITOR on \
                 the pipe, or leave MAX_KEY_CHANNELS unset"
            )
        })?;
        let name = result
            .column_index("name")
            .context("SHOW CHANNELS answered without a name column")?;
        Ok(result
            .rows
            .into_iter()
            .filter_map(|mut row| row.get_mut(name).and_then(Option::take))
            .collect())
    }
}
