//! One librdkafka message, read in place ([`Message`]): its topic, partition, offset, key, value,
//! headers and timestamp, all through librdkafka's C API, here and nowhere else. A message is
//! one the poll thread took by the batch (`fetch_queue`) or rdkafka's `BorrowedMessage`.
//!
//! **A message stays here** from the poll loop to its row ([`Message::route`]): it is read
//! here, the router is asked for its partition's place by the routing key alone (topic handle
//! and partition: `Router::place`, which never sees the message's data), and its `Record` is
//! built here and written into the batch the place gives (`rows::record`, `rows::row`,
//! `rows::batch`: where a message becomes a row).
//!
//! **Headers are read as bytes.** rdkafka's `Headers::iter` panics on a key that is not UTF-8;
//! here headers are read through librdkafka's C API, and a message with such a key becomes a
//! dead letter naming the problem (`record`), never a panic.

#![allow(
    unsafe_code,
    reason = "a librdkafka message is read in place through its C API (no copies)"
)]

use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr::NonNull;

use rdkafka::bindings as rd;
use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::Timestamp;

use crate::rows::record::{self, Record, TimestampKind};
use crate::rows::{row, KafkaOffset};
use crate::source::router::{Place, Router};

/// A librdkafka message, read in place: one taken by the batch, or rdkafka's `BorrowedMessage`.
#[derive(Clone, Copy)]
pub(crate) struct Message<'a> {
    ptr: NonNull<rd::rd_kafka_message_t>,
    _lives: PhantomData<&'a rd::rd_kafka_message_t>,
}

impl<'a> Message<'a> {
    /// # Safety
    /// `ptr` is null or a message that lives for `'a`.
    pub(super) unsafe fn from_ptr(ptr: *mut rd::rd_kafka_message_t) -> Option<Self> {
        Some(Self {
            ptr: NonNull::new(ptr)?,
            _lives: PhantomData,
        })
    }

    /// The message rdkafka's `poll` returned.
    pub(crate) fn of(m: &'a BorrowedMessage<'_>) -> Self {
        // SAFETY: the message lives as long as the borrow of `m`.
        unsafe { Self::from_ptr(m.ptr()).expect("a BorrowedMessage's pointer is not null") }
    }

    fn m(&self) -> &'a rd::rd_kafka_message_t {
        // SAFETY: a live message for 'a (see `from_ptr`).
        unsafe { &*self.ptr.as_ptr() }
    }

    /// Writes the message into its partition's batch, as its row when it can be one: the
    /// router gives its [`Place`] by the routing key (the topic's name read only when the
    /// topic handle does not find it); the `Record` is built here (headers read only when the
    /// router reads them: librdkafka parses them anew for every message they are asked of),
    /// its metadata and size worked out, and it is pushed into the batch; then the router
    /// hands a full batch over and pauses the partition when over budget. Returns the bytes
    /// of its value (a message of a partition not assigned, or awaiting its start offset, is
    /// dropped: it is fetched again).
    pub(crate) fn route<C: Consumer<X>, X: ConsumerContext>(
        &self,
        router: &mut Router,
        consumer: &C,
    ) -> usize {
        let value = self.payload();
        let bytes = value.map_or(0, <[u8]>::len);
        let partition = self.partition();
        let with_headers = router.reads_headers();
        let Some(place) = router.place(self.topic_handle(), partition, || self.topic()) else {
            return bytes;
        };
        let headers = if with_headers {
            self.headers()
        } else {
            Vec::new()
        };
        let record = Record {
            topic: place.topic,
            partition,
            offset: KafkaOffset::new(self.offset()),
            key: self.key(),
            value,
            timestamp: self.timestamp(),
            headers: &headers,
        };
        let Place {
            options,
            raw_values,
            scratch,
            mut target,
            ..
        } = place;
        // The metadata first: it decides the row's size (a key or header its converter cannot
        // read makes the message no row at all). Values kept raw (Schema Registry formats) get
        // theirs where they are decoded, on the partition's worker, so none is written here.
        let (can_be_row, metadata) = if raw_values {
            (false, None)
        } else {
            match record::metadata_of(&record, *options, scratch) {
                Ok(true) => (true, Some(&scratch[..])),
                Ok(false) => (true, None),
                Err(_) => (false, None),
            }
        };
        let row_bytes = if can_be_row {
            row::row_len(value, metadata.map(<[u8]>::len), options)
        } else {
            0
        };
        let side = record.key.map_or(0, <[u8]>::len)
            + headers
                .iter()
                .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
                .sum::<usize>()
            + if row_bytes == 0 {
                bytes
            } else {
                // The bytes before the row's own (blanks and the `{` metadata replaces).
                row::side_len(value, metadata.is_some(), row_bytes, options)
            };
        target
            .batch(row_bytes, side)
            .push(&record, metadata, can_be_row, options);
        let at = target.at;
        router.written(consumer, at);
        bytes
    }

    /// The error librdkafka delivered in place of a message, as rdkafka's `poll` reports it.
    pub(crate) fn error(&self) -> Option<KafkaError> {
        let m = self.m();
        match m.err {
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => None,
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
                Some(KafkaError::PartitionEOF(m.partition))
            }
            e => Some(KafkaError::MessageConsumption(e.into())),
        }
    }

    /// Its topic's name (empty when librdkafka has none or it is not UTF-8, which Kafka's topic
    /// names always are).
    pub(crate) fn topic(&self) -> &'a str {
        let rkt = self.m().rkt;
        if rkt.is_null() {
            return "";
        }
        // SAFETY: a message's topic handle and its name live as long as the message.
        let name = unsafe { CStr::from_ptr(rd::rd_kafka_topic_name(rkt)) };
        name.to_str().unwrap_or("")
    }

    /// Its topic handle, as an address: the same for every message of one topic while the
    /// client holds the topic (an assigned partition's topic is held), and nothing to
    /// dereference.
    pub(crate) fn topic_handle(&self) -> usize {
        self.m().rkt as usize
    }

    /// Its partition.
    pub(crate) fn partition(&self) -> i32 {
        self.m().partition
    }

    /// Its offset.
    pub(crate) fn offset(&self) -> i64 {
        self.m().offset
    }

    /// Its key.
    pub(crate) fn key(&self) -> Option<&'a [u8]> {
        let m = self.m();
        // SAFETY: librdkafka's key pointer and length describe bytes the message owns.
        (!m.key.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(m.key.cast::<u8>(), m.key_len) })
    }

    /// Its value (`None`: a tombstone).
    pub(crate) fn payload(&self) -> Option<&'a [u8]> {
        let m = self.m();
        // SAFETY: as for the key.
        (!m.payload.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(m.payload.cast::<u8>(), m.len) })
    }

    /// Its timestamp and its kind, for the row's `RECORD_METADATA` (`None`: none).
    pub(crate) fn timestamp(&self) -> Option<(TimestampKind, i64)> {
        match self.rdkafka_timestamp() {
            Timestamp::CreateTime(ms) => Some((TimestampKind::CreateTime, ms)),
            Timestamp::LogAppendTime(ms) => Some((TimestampKind::LogAppendTime, ms)),
            Timestamp::NotAvailable => None,
        }
    }

    /// Its timestamp, read as rdkafka reads it.
    pub(crate) fn rdkafka_timestamp(&self) -> Timestamp {
        let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: a live message; librdkafka writes the kind.
        let ms = unsafe { rd::rd_kafka_message_timestamp(self.ptr.as_ptr(), &mut kind) };
        match kind {
            _ if ms == -1 => Timestamp::NotAvailable,
            rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_CREATE_TIME => {
                Timestamp::CreateTime(ms)
            }
            rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME => {
                Timestamp::LogAppendTime(ms)
            }
            rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE => {
                Timestamp::NotAvailable
            }
        }
    }

    /// Its headers, as bytes (a key need not be UTF-8: rdkafka's `Headers::iter` panics on one
    /// that is not), borrowed from the message.
    pub(crate) fn headers(&self) -> Vec<(&'a [u8], Option<&'a [u8]>)> {
        let mut out = Vec::new();
        let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
        // SAFETY: `self.ptr.as_ptr()` is a message that lives for 'a; librdkafka returns a
        // pointer to headers the message owns (or an error and no pointer), valid as long as the
        // message, which outlives the returned slices ('a).
        unsafe {
            if rd::rd_kafka_message_headers(self.ptr.as_ptr(), &mut hdrs)
                != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                || hdrs.is_null()
            {
                return out;
            }
            let count = rd::rd_kafka_header_cnt(hdrs);
            out.reserve(count);
            for idx in 0..count {
                let mut name: *const std::os::raw::c_char = std::ptr::null();
                let mut value: *const std::os::raw::c_void = std::ptr::null();
                let mut size = 0usize;
                if rd::rd_kafka_header_get_all(hdrs, idx, &mut name, &mut value, &mut size)
                    != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                    || name.is_null()
                {
                    continue;
                }
                let key = std::ffi::CStr::from_ptr(name).to_bytes();
                let value = (!value.is_null())
                    .then(|| std::slice::from_raw_parts(value.cast::<u8>(), size));
                out.push((key, value));
            }
        }
        out
    }
}
