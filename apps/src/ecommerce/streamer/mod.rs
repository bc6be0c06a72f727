//! One instance's stream: two channels, resumed from their own committed tokens, fed by the
//! deterministic generator, exactly once without a queue.
//!
//! ```text
//!  open orders_channel_<i>       committed order_<id>  ─► resume after that order
//!  open order_items_channel_<i>  committed item_<id>   ─► resume after that (order, line)
//!  for each batch of orders (from the earlier of the two resume points):
//!      regenerate the batch ── orders not yet committed ──► orders channel
//!                           └─ items not yet committed ───► items channel
//!  flush, wait until both last tokens are committed, close
//! ```
//!
//! A crash (SIGKILL included) loses only what was not committed; reopening the channels
//! discards that on the server, and the next run regenerates exactly those rows. The one error
//! never retried is `OwnershipLost` (another process opened the channel): the session closes
//! both channels and the instance stops without reopening them.

use snowpipe_streaming::Positions;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use snowpipe_streaming::{Channel, CloseOptions, OffsetToken, StreamingIngestClient};

use crate::ecommerce::generator::{
    item_id, split_item_id, Order, OrderItem, Plan, ITEM_PREFIX, ORDER_PREFIX,
};

/// Database of the demo.
pub(super) const DATABASE: &str = "AUTOMATED_INTELLIGENCE";
/// Schema of the demo.
pub(super) const SCHEMA: &str = "RAW";
/// Pipe of `ORDERS`.
pub(super) const ORDERS_PIPE: &str = "ORDERS_PIPE";
/// Pipe of `ORDER_ITEMS`.
pub(super) const ORDER_ITEMS_PIPE: &str = "ORDER_ITEMS_PIPE";
/// Most rows per append: orders and items are under 400 bytes of JSON, so an append stays far
/// below one request (4 MB) and is never split.
pub(super) const MAX_ROWS_PER_APPEND: usize = 1_000;

/// How one instance streams.
#[derive(Debug, Clone)]
pub(super) struct StreamOptions {
    /// The orders, instances and customers.
    pub plan: Plan,
    /// Orders per batch (`orders.batch.size`).
    pub batch: u64,
    /// Orders per second per instance; 0 for as fast as possible.
    pub rate: f64,
    /// Appended to the channel names, to start over with fresh channels.
    pub channel_suffix: String,
    /// How long to wait for the last rows' commit.
    pub commit_timeout: Duration,
    /// Failed sessions in a row (without progress) before giving up.
    pub max_failures: u32,
}

/// Live counters of one instance.
#[derive(Debug, Default)]
pub(super) struct InstanceStats {
    /// The instance (0-based).
    pub instance: u32,
    /// Orders of this instance in the plan.
    pub orders_total: u64,
    /// Items of those orders.
    pub items_total: u64,
    /// Orders committed (from the committed token, so earlier runs count too).
    pub orders_committed: AtomicU64,
    /// Items committed (likewise).
    pub items_committed: AtomicU64,
    /// Orders committed when this run started.
    pub orders_at_start: AtomicU64,
    /// Items committed when this run started.
    pub items_at_start: AtomicU64,
    /// Rows (orders + items) appended by this run; resends after a reopen count again.
    pub rows_sent: AtomicU64,
    /// Sum and count of append→commit times, in ms, and the largest.
    pub commit_ms_sum: AtomicU64,
    /// See `commit_ms_sum`.
    pub commit_count: AtomicU64,
    /// See `commit_ms_sum`.
    pub commit_ms_max: AtomicU64,
    /// Channel sessions (pairs of opens).
    pub sessions: AtomicU64,
    /// Milliseconds from the start until everything was committed (0 while running).
    pub finished_ms: AtomicU64,
}

impl InstanceStats {
    /// Rows committed by this run.
    pub(super) fn rows_committed_this_run(&self) -> u64 {
        let now = self.orders_committed.load(Ordering::Relaxed)
            + self.items_committed.load(Ordering::Relaxed);
        let start = self.orders_at_start.load(Ordering::Relaxed)
            + self.items_at_start.load(Ordering::Relaxed);
        now.saturating_sub(start)
    }
}

/// Items per order of one instance, as prefix sums: `before[s]` = items of orders `1..=s`.
#[derive(Debug)]
pub(super) struct ItemIndex {
    counts: Vec<u8>,
    before: Vec<u64>,
}

impl ItemIndex {
    /// Builds the index of `instance`.
    pub(super) fn new(plan: &Plan, instance: u32) -> Self {
        let counts = plan.item_counts(instance);
        let mut before = Vec::with_capacity(counts.len() + 1);
        let mut sum = 0;
        before.push(0);
        for &c in &counts {
            sum += u64::from(c);
            before.push(sum);
        }
        ItemIndex { counts, before }
    }

    /// Items of all orders.
    pub(super) fn total(&self) -> u64 {
        *self.before.last().expect("never empty")
    }

    /// Items of order `seq`.
    pub(super) fn count(&self, seq: u64) -> Option<u32> {
        let i = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.counts.get(i).map(|&c| u32::from(c))
    }

    /// Items up to and including (seq, line).
    pub(super) fn committed(&self, pos: ItemPos) -> u64 {
        let seq = (pos.seq as usize).min(self.counts.len());
        self.before[seq.saturating_sub(1)] + u64::from(pos.line)
    }
}

/// A position in the items channel: line `line` of order `seq`; (0, 0) before the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(super) struct ItemPos {
    /// The order's seq within the instance.
    pub seq: u64,
    /// The line (1-based).
    pub line: u32,
}

/// The channel names of `instance`.
pub(super) fn channel_names(instance: u32, suffix: &str) -> (String, String) {
    (
        format!("orders_channel_{instance}{suffix}"),
        format!("order_items_channel_{instance}{suffix}"),
    )
}

/// The order seq a committed orders token stands for (0 when nothing is committed).
///
/// # Errors
/// When the token is not `order_<id>` of an order in this instance's ID space.
pub(super) fn resume_orders(
    token: Option<&OffsetToken>,
    instance: u32,
    channel: &str,
) -> Result<u64> {
    let Some(token) = token else { return Ok(0) };
    match token.prefixed_number() {
        Some((ORDER_PREFIX, id)) => Plan::seq_of(instance, id),
        _ => None,
    }
    .with_context(|| foreign_token(channel, token, "order", instance))
}

/// The item position a committed items token stands for ((0, 0) when nothing is committed).
///
/// # Errors
/// When the token is not `item_<id>` of an item in this instance's ID space.
pub(super) fn resume_items(
    token: Option<&OffsetToken>,
    instance: u32,
    channel: &str,
) -> Result<ItemPos> {
    let Some(token) = token else {
        return Ok(ItemPos::default());
    };
    match token.prefixed_number() {
        Some((ITEM_PREFIX, id)) => {
            let (order_id, line) = split_item_id(id);
            Plan::seq_of(instance, order_id)
                .filter(|_| line >= 1)
                .map(|seq| ItemPos { seq, line })
        }
        _ => None,
    }
    .with_context(|| foreign_token(channel, token, "item", instance))
}

fn foreign_token(channel: &str, token: &OffsetToken, what: &str, instance: u32) -> String {
    format!(
        "channel {channel} has committed offset token {token:?}, which is not an {what} of instance \
         {instance}: the channel was fed by another program or other settings; pass \
         --channel-suffix SUFFIX to stream into fresh channels"
    )
}

/// The one place rows are appended: every row with its own token, in appends of at most
/// `MAX_ROWS_PER_APPEND` rows (the SDK divides each append into requests at row boundaries,
/// every request carrying the tokens of its own first and last row).
///
/// # Errors
/// As `Channel::append`.
async fn append_with_tokens<T: Serialize + Sync>(
    channel: &Channel,
    rows: &[(T, OffsetToken)],
) -> Result<()> {
    for piece in rows.chunks(MAX_ROWS_PER_APPEND) {
        channel
            .append(
                snowpipe_streaming::Rows::serde(piece.iter().map(|(row, _)| row)),
                Positions::per_row(piece.iter().map(|(_, token)| token.clone())),
            )
            .await?;
    }
    Ok(())
}

/// Appends not yet seen committed: (last token, when appended).
type Pending = Arc<Mutex<VecDeque<(OffsetToken, Instant)>>>;

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Follows a channel's committed token: updates the committed count and the commit latency.
fn watch(
    channel: &Channel,
    pending: Pending,
    stats: Arc<InstanceStats>,
    on_commit: impl Fn(&OffsetToken) + Send + 'static,
) -> AbortOnDrop {
    let mut rx = channel.watch_committed();
    AbortOnDrop(tokio::spawn(async move {
        loop {
            let committed = rx.borrow_and_update().clone();
            if let Some(c) = committed {
                on_commit(&c);
                let now = Instant::now();
                let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                while p.front().is_some_and(|(t, _)| c.reaches(t)) {
                    let (_, at) = p.pop_front().expect("front exists");
                    let ms = now.duration_since(at).as_millis() as u64;
                    stats.commit_ms_sum.fetch_add(ms, Ordering::Relaxed);
                    stats.commit_count.fetch_add(1, Ordering::Relaxed);
                    stats.commit_ms_max.fetch_max(ms, Ordering::Relaxed);
                }
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
    }))
}

/// Streams one instance until all its orders and items are committed, reopening the channels
/// after errors.
///
/// # Errors
/// When `max_failures` sessions in a row fail without progress, or a channel holds a token
/// of something else.
///
/// # Cancellation
/// Dropping the future stops streaming; what is not committed is regenerated by the next run.
pub(super) async fn stream_instance(
    client: &StreamingIngestClient,
    opts: &StreamOptions,
    index: &ItemIndex,
    stats: Arc<InstanceStats>,
) -> Result<()> {
    let started = Instant::now();
    let mut failures = 0;
    loop {
        let before = stats.orders_committed.load(Ordering::Relaxed)
            + stats.items_committed.load(Ordering::Relaxed);
        match session(client, opts, index, &stats, started).await {
            Ok(()) => {
                stats.finished_ms.store(
                    started.elapsed().as_millis().max(1) as u64,
                    Ordering::Relaxed,
                );
                return Ok(());
            }
            Err(e) if failures < opts.max_failures && !is_permanent(&e) => {
                let after = stats.orders_committed.load(Ordering::Relaxed)
                    + stats.items_committed.load(Ordering::Relaxed);
                failures = if after > before { 1 } else { failures + 1 };
                tracing::warn!(
                    instance = stats.instance,
                    attempt = failures,
                    "session failed, reopening the channels: {e:#}"
                );
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
            }
            Err(e) => return Err(e.context(format!("instance {} failed", stats.instance))),
        }
    }
}

/// Errors no reopen can fix, or that must not be fixed by one: another writer took the channel
/// over (`OwnershipLost`; reopening would fence it and both would write: duplicates).
fn is_permanent(e: &anyhow::Error) -> bool {
    crate::common::is_ownership_lost(e)
        || e.chain().any(|c| {
            c.downcast_ref::<snowpipe_streaming::Error>()
                .is_some_and(|e| matches!(e, snowpipe_streaming::Error::Auth { .. }))
                || c.to_string().contains("--channel-suffix")
        })
}

/// One pair of channel lifetimes: open, resume, stream, wait for the commit, close.
async fn session(
    client: &StreamingIngestClient,
    opts: &StreamOptions,
    index: &ItemIndex,
    stats: &Arc<InstanceStats>,
    run_started: Instant,
) -> Result<()> {
    let i = stats.instance;
    let (orders_name, items_name) = channel_names(i, &opts.channel_suffix);
    let open = |pipe: &'static str, name: String| async move {
        client
            .pipe(DATABASE, SCHEMA, pipe)
            .open_channel(&name)
            .await
            .with_context(|| format!("cannot open channel {name} on {DATABASE}.{SCHEMA}.{pipe}"))
    };
    let orders_ch = open(ORDERS_PIPE, orders_name.clone()).await?;
    let items_ch = match open(ORDER_ITEMS_PIPE, items_name.clone()).await {
        Ok(ch) => ch,
        Err(e) => {
            release(orders_ch).await;
            return Err(e);
        }
    };
    stats.sessions.fetch_add(1, Ordering::Relaxed);
    let names = (orders_name.as_str(), items_name.as_str());
    match pump(&orders_ch, &items_ch, names, opts, index, stats).await {
        Ok(()) => {
            tracing::debug!(
                instance = i,
                elapsed_ms = run_started.elapsed().as_millis() as u64,
                "instance committed"
            );
            orders_ch
                .close()
                .await
                .with_context(|| format!("closing {orders_name} failed"))?;
            items_ch
                .close()
                .await
                .with_context(|| format!("closing {items_name} failed"))?;
            Ok(())
        }
        Err(e) => {
            release(orders_ch).await;
            release(items_ch).await;
            Err(e)
        }
    }
}

/// Closes a channel after an error, before it is opened again. A dropped handle would keep
/// sending (and recovering) in the background for a few seconds, racing the next session's
/// handle for the channel; closing stops it. Errors are ignored: the channel is likely broken.
async fn release(channel: Channel) {
    let _ = channel
        .close_with(CloseOptions::default().timeout(Duration::from_secs(10)))
        .await;
}

/// Resumes after the committed tokens, streams the rest, waits for the last commit.
async fn pump(
    orders_ch: &Channel,
    items_ch: &Channel,
    (orders_name, items_name): (&str, &str),
    opts: &StreamOptions,
    index: &ItemIndex,
    stats: &Arc<InstanceStats>,
) -> Result<()> {
    let first_session = stats.sessions.load(Ordering::Relaxed) == 1;
    let mut pump = Pump {
        orders_ch,
        items_ch,
        orders_name,
        items_name,
        opts,
        stats,
        n: opts.plan.orders_of(stats.instance),
        done_orders: 0,
        done_items: ItemPos::default(),
        orders_pending: Pending::default(),
        items_pending: Pending::default(),
        last_tokens: (None, None),
    };
    pump.resume(index)?;
    pump.record_resume(index, first_session);
    let _watches = pump.watch_commits(index);
    pump.send_all().await?;
    pump.commit_tail().await?;
    stats.orders_committed.store(pump.n, Ordering::Relaxed);
    stats
        .items_committed
        .store(index.total(), Ordering::Relaxed);
    Ok(())
}

/// Rows of one batch, each with its offset token.
type Rows<T> = Vec<(T, OffsetToken)>;

/// The state a session's pump shares: its two channels, where they resumed, what is sent and
/// not yet committed.
struct Pump<'a> {
    orders_ch: &'a Channel,
    items_ch: &'a Channel,
    orders_name: &'a str,
    items_name: &'a str,
    opts: &'a StreamOptions,
    stats: &'a Arc<InstanceStats>,
    /// Orders of this instance.
    n: u64,
    /// The order seq the orders channel committed.
    done_orders: u64,
    /// The item position the items channel committed.
    done_items: ItemPos,
    orders_pending: Pending,
    items_pending: Pending,
    /// The last token appended to each channel.
    last_tokens: (Option<OffsetToken>, Option<OffsetToken>),
}

impl Pump<'_> {
    /// Reads the resume points from the committed tokens and checks them against the plan.
    fn resume(&mut self, index: &ItemIndex) -> Result<()> {
        let (i, n, items_name) = (self.stats.instance, self.n, self.items_name);
        self.done_orders = resume_orders(
            self.orders_ch.latest_committed_offset_token().as_ref(),
            i,
            self.orders_name,
        )?;
        self.done_items = resume_items(
            self.items_ch.latest_committed_offset_token().as_ref(),
            i,
            items_name,
        )?;
        let done_items = self.done_items;
        if done_items.seq >= 1 && done_items.seq <= n {
            let count = index.count(done_items.seq).unwrap_or(0);
            if done_items.line > count {
                bail!(
                    "channel {items_name} has committed line {} of order seq {} which has only {count} \
                     items with these settings: use the --seed, --orders, --instances and --customers \
                     of the run that wrote it, or --channel-suffix SUFFIX for fresh channels",
                    done_items.line,
                    done_items.seq
                );
            }
        }
        if self.done_orders > n || done_items.seq > n {
            tracing::warn!(
                instance = i,
                "the channels already hold more orders than --orders asks for; nothing to send"
            );
        }
        Ok(())
    }

    /// Sets the committed counts from the resume points (and, in the run's first session,
    /// the counts it started from).
    fn record_resume(&self, index: &ItemIndex, first_session: bool) {
        let stats = self.stats;
        let orders_committed = self.done_orders.min(self.n);
        let items_committed = index.committed(self.done_items);
        stats
            .orders_committed
            .store(orders_committed, Ordering::Relaxed);
        stats
            .items_committed
            .store(items_committed, Ordering::Relaxed);
        if first_session {
            stats
                .orders_at_start
                .store(orders_committed, Ordering::Relaxed);
            stats
                .items_at_start
                .store(items_committed, Ordering::Relaxed);
        }
    }

    /// Follows both channels' committed tokens into the committed counts and the commit
    /// latency; the watchers stop when the returned guards are dropped.
    fn watch_commits(&self, index: &ItemIndex) -> (AbortOnDrop, AbortOnDrop) {
        let (stats, n) = (self.stats, self.n);
        let orders_watch = {
            let s = stats.clone();
            watch(
                self.orders_ch,
                self.orders_pending.clone(),
                stats.clone(),
                move |t| {
                    if let Ok(seq) = resume_orders(Some(t), s.instance, "") {
                        s.orders_committed.store(seq.min(n), Ordering::Relaxed);
                    }
                },
            )
        };
        let items_watch = {
            let s = stats.clone();
            let before = index.before.clone();
            watch(
                self.items_ch,
                self.items_pending.clone(),
                stats.clone(),
                move |t| {
                    if let Ok(pos) = resume_items(Some(t), s.instance, "") {
                        let seq = (pos.seq as usize).min(before.len() - 1);
                        let done = before[seq.saturating_sub(1)] + u64::from(pos.line);
                        s.items_committed.store(done, Ordering::Relaxed);
                    }
                },
            )
        };
        (orders_watch, items_watch)
    }

    /// Regenerates and sends the orders after the resume points, batch by batch, paced to
    /// `--rate`.
    async fn send_all(&mut self) -> Result<()> {
        let opts = self.opts;
        // Start at the earlier of the two resume points: an order whose items are partly
        // committed is regenerated whole, and only its missing lines are sent.
        let mut seq = (self.done_orders + 1).min(self.done_items.seq.max(1));
        let batch = if opts.rate > 0.0 {
            opts.batch.min((opts.rate / 10.0).ceil() as u64).max(1)
        } else {
            opts.batch
        };
        let paced_from = Instant::now();
        let first_seq = seq;
        while seq <= self.n {
            let end = (seq + batch - 1).min(self.n);
            let (orders, items) = self.batch(seq, end)?;
            self.send(&orders, &items).await?;
            seq = end + 1;
            let due = snowpipe_cli_support::pace::due(seq - first_seq, opts.rate);
            if let Some(due) = due.and_then(|due| paced_from.checked_add(due)) {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        Ok(())
    }

    /// The orders `seq..=end` and their items not yet committed, with their tokens.
    fn batch(&self, seq: u64, end: u64) -> Result<(Rows<Order>, Rows<OrderItem>)> {
        let i = self.stats.instance;
        let mut orders = Vec::new();
        let mut items = Vec::new();
        for s in seq..=end {
            let (order, lines) = self.opts.plan.order(i, s);
            if s > self.done_orders {
                let token = OffsetToken::new(format!("{ORDER_PREFIX}{}", order.order_id))?;
                orders.push((order, token));
            }
            for item in lines {
                if (ItemPos {
                    seq: s,
                    line: item.line_number,
                }) > self.done_items
                {
                    let token = OffsetToken::new(format!(
                        "{ITEM_PREFIX}{}",
                        item_id(item.order_id, item.line_number)
                    ))?;
                    items.push((item, token));
                }
            }
        }
        Ok((orders, items))
    }

    /// Appends one batch's orders and items to their channels.
    async fn send(&mut self, orders: &Rows<Order>, items: &Rows<OrderItem>) -> Result<()> {
        if let Some((_, t)) = orders.last() {
            append_with_tokens(self.orders_ch, orders)
                .await
                .with_context(|| format!("append to {} failed", self.orders_name))?;
            push(&self.orders_pending, t);
            self.last_tokens.0 = Some(t.clone());
        }
        if let Some((_, t)) = items.last() {
            append_with_tokens(self.items_ch, items)
                .await
                .with_context(|| format!("append to {} failed", self.items_name))?;
            push(&self.items_pending, t);
            self.last_tokens.1 = Some(t.clone());
        }
        self.stats
            .rows_sent
            .fetch_add((orders.len() + items.len()) as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Sends the tail now rather than after the client lag, and waits for its commit.
    async fn commit_tail(&self) -> Result<()> {
        for (channel, token, name) in [
            (self.orders_ch, &self.last_tokens.0, self.orders_name),
            (self.items_ch, &self.last_tokens.1, self.items_name),
        ] {
            if let Some(token) = token {
                channel
                    .flush()
                    .await
                    .with_context(|| format!("flush of {name} failed"))?;
                channel
                    .wait_for_commit(token, self.opts.commit_timeout)
                    .await
                    .with_context(|| format!("{name}: {token} was not committed"))?;
            }
        }
        Ok(())
    }
}

fn push(pending: &Pending, token: &OffsetToken) {
    pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back((token.clone(), Instant::now()));
}

#[cfg(test)]
mod tests;
