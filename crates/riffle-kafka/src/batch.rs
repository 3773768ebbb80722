//! Taking the messages already queued in librdkafka in one call: the only place this crate
//! calls librdkafka's C API itself, hence the only `unsafe` in it.
//!
//! Why: the `rdkafka` crate returns one message per poll, and every poll reads the clock
//! (librdkafka tracks `max.poll.interval.ms` at each one), takes the queue lock and
//! allocates a reference count for the message. On the ingest benchmark that was about a
//! sixth of the consuming process's CPU. `rd_kafka_consume_batch_queue` takes up to N
//! queued messages under the same rules (librdkafka still moves the application position
//! past each one, including control records it passes over) with one clock read.
//!
//! How it is used: a fetch first waits for one message with the crate's ordinary poll,
//! which also serves the client's events (errors, logs) with their codes; only then does it
//! take what else is already queued, without waiting ([`drain`]). Errors met among those
//! messages come back in order as [`KafkaError`]s, as a poll would return them. One thing
//! differs: a client-level event queued among the messages is served by librdkafka's own
//! callbacks rather than returned. A log line (warning level or above) is then printed by
//! librdkafka to standard error instead of going to `tracing`; an error not tied to the
//! partition becomes such a log line on the client's queue, which the next poll hands to
//! the context ([`crate::client::RiffleContext`]) as usual. Nothing is lost; only the
//! route differs, for events that arrive while messages are queued.
//!
//! Ownership: each [`RawMessage`] is one message returned by librdkafka, destroyed when
//! dropped; it borrows the consumer, so it cannot outlive the client it came from.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr::NonNull;

use bytes::Bytes;
use rdkafka::bindings as rdsys;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::client::Consumer;
use crate::consumer::Fetched;

/// The most messages one call takes.
pub(crate) const MAX_DRAIN: usize = 1024;

/// A message taken from librdkafka's queue; destroyed (given back to librdkafka) on drop.
pub(crate) struct RawMessage<'c> {
    ptr: NonNull<rdsys::rd_kafka_message_t>,
    _consumer: PhantomData<&'c Consumer>,
}

impl Drop for RawMessage<'_> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from rd_kafka_consume_batch_queue, is owned by this value
        // alone and is destroyed exactly once, while its client is alive (the borrow).
        unsafe { rdsys::rd_kafka_message_destroy(self.ptr.as_ptr()) }
    }
}

impl RawMessage<'_> {
    fn raw(&self) -> &rdsys::rd_kafka_message_t {
        // SAFETY: the message is valid until destroyed in drop; librdkafka does not
        // change a message handed to the application.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn partition(&self) -> i32 {
        self.raw().partition
    }

    /// Whether the message belongs to `topic`.
    pub(crate) fn topic_is(&self, topic: &str) -> bool {
        let rkt = self.raw().rkt;
        if rkt.is_null() {
            return false;
        }
        // SAFETY: a non-null `rkt` of a live message is a live topic handle, whose name is
        // a NUL-terminated string owned by librdkafka for the handle's life.
        let name = unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name(rkt)) };
        name.to_bytes() == topic.as_bytes()
    }

    pub(crate) fn offset(&self) -> i64 {
        self.raw().offset
    }

    /// `len` bytes at `ptr`, one of the message's own buffers (key or payload).
    fn slice(&self, ptr: *mut std::ffi::c_void, len: usize) -> Option<&[u8]> {
        (!ptr.is_null()).then(|| {
            // SAFETY: librdkafka gives `len` readable bytes at a non-null key or payload
            // pointer, which live as long as the message, and so as long as `&self`.
            unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }
        })
    }
}

impl Fetched for RawMessage<'_> {
    fn key_bytes(&self) -> Option<&[u8]> {
        let m = self.raw();
        self.slice(m.key, m.key_len)
    }

    fn value_bytes(&self) -> Option<&[u8]> {
        let m = self.raw();
        self.slice(m.payload, m.len)
    }

    fn record_offset(&self) -> i64 {
        self.raw().offset
    }

    fn timestamp_ms(&self) -> Option<i64> {
        let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: a live message and a valid out-pointer.
        let ts = unsafe { rdsys::rd_kafka_message_timestamp(self.ptr.as_ptr(), &mut kind) };
        (ts != -1 && kind != rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
            .then_some(ts)
    }

    fn header_list(&self) -> Vec<(String, Bytes)> {
        let mut hdrs: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
        // SAFETY: a live message and a valid out-pointer; the headers belong to the message.
        let err = unsafe { rdsys::rd_kafka_message_headers(self.ptr.as_ptr(), &mut hdrs) };
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || hdrs.is_null() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for idx in 0.. {
            let mut name: *const std::ffi::c_char = std::ptr::null();
            let mut value: *const std::ffi::c_void = std::ptr::null();
            let mut size = 0usize;
            // SAFETY: `hdrs` is the message's header list; the out-pointers are valid;
            // an index past the end answers an error and writes nothing.
            let err = unsafe {
                rdsys::rd_kafka_header_get_all(hdrs, idx, &mut name, &mut value, &mut size)
            };
            if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
                break;
            }
            // SAFETY: header names are NUL-terminated strings owned by the header list.
            let key = unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned();
            let value = if value.is_null() {
                Bytes::new()
            } else {
                // SAFETY: `size` readable bytes at `value`, owned by the header list.
                Bytes::copy_from_slice(unsafe {
                    std::slice::from_raw_parts(value as *const u8, size)
                })
            };
            out.push((key, value));
        }
        out
    }
}

/// Takes up to `max` (at most [`MAX_DRAIN`]) messages already in the consumer's queue,
/// without waiting, in queue order; a message carrying an error comes back as the error a
/// poll would have returned (`PartitionEOF` included).
pub(crate) fn drain(consumer: &Consumer, max: usize) -> Vec<Result<RawMessage<'_>, KafkaError>> {
    let max = max.min(MAX_DRAIN);
    if max == 0 {
        return Vec::new();
    }
    let rk = rdkafka::consumer::Consumer::client(consumer).native_ptr();
    // SAFETY: `rk` is the live client of `consumer` (borrowed for this call); the returned
    // handle is a new reference, destroyed below.
    let queue = unsafe { rdsys::rd_kafka_queue_get_consumer(rk) };
    if queue.is_null() {
        return Vec::new();
    }
    let mut ptrs: Vec<*mut rdsys::rd_kafka_message_t> = vec![std::ptr::null_mut(); max];
    // SAFETY: `ptrs` has room for `max` pointers; a timeout of 0 does not wait.
    let n = unsafe { rdsys::rd_kafka_consume_batch_queue(queue, 0, ptrs.as_mut_ptr(), max) };
    // SAFETY: the handle from rd_kafka_queue_get_consumer above, destroyed once; the
    // messages taken keep what they need alive by themselves.
    unsafe { rdsys::rd_kafka_queue_destroy(queue) };
    let n = usize::try_from(n).unwrap_or(0).min(max);
    ptrs.truncate(n);
    ptrs.into_iter()
        .filter_map(NonNull::new)
        .map(|ptr| {
            let m = RawMessage {
                ptr,
                _consumer: PhantomData,
            };
            let err = m.raw().err;
            if err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                Ok(m)
            } else if err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF {
                Err(KafkaError::PartitionEOF(m.partition()))
            } else {
                Err(KafkaError::MessageConsumption(RDKafkaErrorCode::from(err)))
            }
        })
        .collect()
}
