//! Opening one assigned partition's channel, and where the partition starts reading.
//!
//! A partition's channel is `<prefix>_<topic>_<partition>` on its topic's pipe: with
//! `--create-tables` its table is made first, with `--table-named-pipes` a pipe named like the
//! table wins over the default pipe, with client-side validation the table's columns are read
//! once, and with `--migrate-v3-offsets` a channel v3 left behind gives its position once the
//! channel is open. The partition then starts at the channel's committed offset token + 1 (the
//! token is the Kafka offset), or, with no token, where `--start` says.

use std::sync::Arc;

use rdkafka::Offset;
use snowpipe_streaming::{Channel, StreamingIngestClient};

use crate::connector::create_tables::{TableCreator, TableNamedPipes};
use crate::connector::migrate_v3::Migrator;
use crate::connector::naming::ChannelNames;
use crate::connector::table_columns::{ClientSide, TableCheck};
use crate::connector::topic_table::Routes;
use crate::error::{Context, Error, Result};
use crate::rows::{KafkaOffset, TopicPartition};
use crate::sink::settings::Start;

/// Channels opened at once for an assignment.
pub(super) const OPEN_CONCURRENCY: usize = 32;

/// What opening a partition's channel takes: the client and the settings that name the
/// channel, its pipe and its table.
pub(super) struct Opener {
    pub(super) client: StreamingIngestClient,
    pub(super) routes: Routes,
    pub(super) channels: ChannelNames,
    pub(super) database: String,
    pub(super) schema: String,
    pub(super) tables: Option<TableCreator>,
    pub(super) named_pipes: Option<TableNamedPipes>,
    pub(super) client_side: Option<ClientSide>,
    pub(super) migrator: Option<Migrator>,
    pub(super) start: Start,
}

impl Opener {
    /// Opens `part`'s channel (and, with client-side validation, its table's check).
    ///
    /// # Errors
    /// When the topic has no pipe, the table cannot be created or read, the channel cannot be
    /// opened (a missing pipe, no grant), or v3's offsets cannot be migrated.
    pub(super) async fn open(
        &self,
        part: &TopicPartition,
    ) -> Result<(Channel, Option<Arc<TableCheck>>)> {
        let (topic, partition) = (&*part.topic, part.partition);
        let default_pipe = self.routes.pipe_of(topic);
        let name = self.channels.channel_name(topic, partition);
        let (database, schema) = (&self.database, &self.schema);
        let p = default_pipe
            .with_context(Error::Config, || format!("no pipe for {topic}/{partition}"))?;
        // `--create-tables`: the table before its channel.
        if let Some(t) = &self.tables {
            t.ensure(&p).await?;
        }
        // `--table-named-pipes`: a pipe named like the table wins.
        let default_p = p.clone();
        let p = match &self.named_pipes {
            Some(n) => n.pipe_for(&p).await?,
            None => p,
        };
        // Client-side validation: the table's columns, once.
        let check = match &self.client_side {
            Some(v) => v.table(&p).await?,
            None => None,
        };
        let pipe = self.client.pipe(database, schema, &p);
        let channel = pipe
            .open_channel(&name)
            .await
            .with_context(Error::Snowflake, || {
                format!("cannot open the channel of {topic}/{partition} on {database}.{schema}.{p}")
            })?;
        // `--migrate-v3-offsets`: v3's position, once opened.
        let channel = match &self.migrator {
            // v3's table is the default pipe's (the same table).
            Some(m) => {
                crate::connector::migrate_v3::resume(
                    m, &pipe, &default_p, topic, partition, channel,
                )
                .await?
            }
            None => channel,
        };
        Ok((channel, check))
    }

    /// Where `channel`'s partition starts: after its committed offset token, else at `--start`.
    pub(super) fn start_of(&self, channel: &Channel) -> Offset {
        match KafkaOffset::committed(channel.latest_committed_offset_token().as_ref()) {
            Some(c) => Offset::Offset(c.next().get()),
            None => match self.start {
                Start::Earliest => Offset::Beginning,
                Start::Latest => Offset::End,
            },
        }
    }
}
