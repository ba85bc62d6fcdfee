//! The events on Tessera's Redis channels and their wire format.
//!
//! The record types are generated from `wit/events.wit` (the single source of truth),
//! with serde derives; [`Event`] names one of them together with its channel. On the
//! wire each message is a CloudEvents 1.0 structured-mode JSON envelope whose `type`
//! is the channel name and whose `data` is the record (`wit/README.md` documents it
//! with one example per event; the tests below check those examples).
//!
//! Consumers learn which event a message is only from the envelope: the Redis trigger
//! does not tell a component which channel a message came from. So [`decode`] dispatches
//! on `type`, and refuses, without panicking, anything it does not understand.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::trace::TraceParent;

mod bindings {
    #![allow(missing_docs)]
    wit_bindgen::generate!({
        path: "../../wit",
        world: "tessera:events/events",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
        // Serialized by hand below, as the WIT case name.
        additional_derives_ignore: ["order-status"],
        generate_all,
        // No function uses the records, and wit-bindgen skips unused types by default.
        generate_unused_types: true,
    });
}

pub use bindings::tessera::events::types::{
    ExpirationComplete, OrderCancelled, OrderCompleted, OrderCreated, OrderStatus, OrderTicket,
    PaymentCreated, PaymentRefunded, TicketCreated, TicketRef, TicketUpdated,
};

/// The CloudEvents version of every envelope.
pub const SPEC_VERSION: &str = "1.0";

/// The content type of every envelope's `data`.
pub const DATA_CONTENT_TYPE: &str = "application/json";

/// Declares [`Event`], its channels and the dispatch between them from one table, so
/// a new event cannot be added to one place and forgotten in another.
macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident => $constant:ident = $channel:literal,)*) => {
        /// The Redis channel names; an event's channel is also its envelope `type`.
        pub mod channel {
            $(
                #[doc = concat!("`", $channel, "`")]
                pub const $constant: &str = $channel;
            )*
            /// Every channel, in the order of the contract's table.
            pub const ALL: &[&str] = &[$($constant),*];
        }

        /// One event of the contract: a record from `wit/events.wit` and its channel.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $($(#[$doc])* $variant($variant),)*
        }

        impl Event {
            /// The channel this event is published on (and its envelope `type`).
            pub fn channel(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => channel::$constant,)*
                }
            }

            fn serialize_data<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Self::$variant(data) => data.serialize(serializer),)*
                }
            }

            fn from_data(event_type: &str, data: Value) -> Result<Self, DecodeError> {
                let invalid = |source| DecodeError::Data {
                    event_type: event_type.to_owned(),
                    source,
                };
                match event_type {
                    $(channel::$constant => serde_json::from_value(data)
                        .map(Self::$variant)
                        .map_err(invalid),)*
                    other => Err(DecodeError::UnknownType(other.to_owned())),
                }
            }
        }

        $(
            impl From<$variant> for Event {
                fn from(data: $variant) -> Self {
                    Self::$variant(data)
                }
            }
        )*
    };
}

events! {
    /// From tickets: a ticket was listed.
    TicketCreated => TICKET_CREATED = "ticket:created",
    /// From tickets: a ticket changed (edited, reserved or released).
    TicketUpdated => TICKET_UPDATED = "ticket:updated",
    /// From orders: an order reserved a ticket.
    OrderCreated => ORDER_CREATED = "order:created",
    /// From orders: an order was cancelled (by the buyer or on expiry).
    OrderCancelled => ORDER_CANCELLED = "order:cancelled",
    /// From orders: an order was paid.
    OrderCompleted => ORDER_COMPLETED = "order:completed",
    /// From expiration: an order's lock window has passed.
    ExpirationComplete => EXPIRATION_COMPLETE = "expiration:complete",
    /// From payments: an order was paid.
    PaymentCreated => PAYMENT_CREATED = "payment:created",
    /// From payments: a payment was given back (its order did not complete).
    PaymentRefunded => PAYMENT_REFUNDED = "payment:refunded",
}

/// The CloudEvents 1.0 attributes Tessera uses, around `data`.
///
/// Other attributes (CloudEvents extensions) are ignored when decoding; `traceparent` is
/// the one extension Tessera writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<D = Value> {
    /// Always [`SPEC_VERSION`].
    pub specversion: String,
    /// Unique per event (a UUID v4); the same id means the same event.
    pub id: String,
    /// The channel name, e.g. `ticket:created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The publishing service, `/tessera/<service>`.
    pub source: String,
    /// When the event happened, RFC 3339 UTC. Optional in CloudEvents; always sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// [`DATA_CONTENT_TYPE`]; when absent, CloudEvents' JSON format means JSON too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    /// The CloudEvents Distributed Tracing extension: the W3C traceparent of the request
    /// or message that caused the event ([`crate::trace`]). Optional; a value that is
    /// not a string reads as absent, so it never makes an event unreadable.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "string_or_none"
    )]
    pub traceparent: Option<String>,
    /// The event record.
    pub data: D,
}

/// A string attribute, or `None` for any other JSON value (an extension this version
/// does not rely on must not make the envelope unreadable).
fn string_or_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => Some(text),
        _ => None,
    })
}

/// Why a message is not an event this version understands.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or a required CloudEvents attribute is missing or of the wrong type.
    #[error("not a CloudEvents JSON envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    /// `specversion` is not `1.0`.
    #[error("unsupported CloudEvents specversion `{0}` (expected `1.0`)")]
    SpecVersion(String),
    /// `datacontenttype` is not JSON.
    #[error("unsupported datacontenttype `{0}` (expected `application/json`)")]
    ContentType(String),
    /// `type` is not one of the contract's channels.
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    /// `data` does not match the record of its `type`.
    #[error("invalid data for `{event_type}`: {source}")]
    Data {
        /// The envelope's `type`.
        event_type: String,
        /// What is wrong with `data`.
        #[source]
        source: serde_json::Error,
    },
}

/// Serializes the record inside an [`Event`] (the envelope's `data`).
struct Data<'a>(&'a Event);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_data(serializer)
    }
}

/// The envelope of `event` as JSON bytes.
///
/// `source` is the publisher (`/tessera/<service>`), `id` a fresh UUID v4, `time`
/// RFC 3339 UTC and `traceparent` the trace context of what caused the event (none:
/// no `traceparent` attribute); they are parameters so that the output is
/// deterministic in tests ([`crate::outbox::enqueue`] fills them in).
pub fn encode(
    event: &Event,
    source: &str,
    id: &str,
    time: &str,
    traceparent: Option<&TraceParent>,
) -> Vec<u8> {
    let envelope = Envelope {
        specversion: SPEC_VERSION.to_owned(),
        id: id.to_owned(),
        event_type: event.channel().to_owned(),
        source: source.to_owned(),
        time: Some(time.to_owned()),
        datacontenttype: Some(DATA_CONTENT_TYPE.to_owned()),
        traceparent: traceparent.map(|traceparent| traceparent.as_str().to_owned()),
        data: Data(event),
    };
    // Strings, integers, options and enums as strings: serializing cannot fail.
    serde_json::to_vec(&envelope).expect("event envelopes always serialize")
}

/// The event in a message, checking the envelope and dispatching on its `type`.
///
/// Extensions, `traceparent` included, are not checked: the entry point reads the
/// trace context from the message itself ([`crate::message::serve`]).
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(DecodeError::Envelope)?;
    if envelope.specversion != SPEC_VERSION {
        return Err(DecodeError::SpecVersion(envelope.specversion));
    }
    if let Some(content_type) = envelope.datacontenttype
        && !is_json(&content_type)
    {
        return Err(DecodeError::ContentType(content_type));
    }
    Event::from_data(&envelope.event_type, envelope.data)
}

/// The event in a message a service consumes, or `None` once it has logged why the
/// message is skipped: malformed, or of a type this version does not know (a newer
/// publisher). Either way the message is acknowledged, since a redelivery would not
/// make it readable. `service` names the consumer in the log line.
pub fn decode_or_skip(service: &str, bytes: &[u8]) -> Option<Event> {
    match decode(bytes) {
        Ok(event) => Some(event),
        Err(DecodeError::UnknownType(event_type)) => {
            eprintln!("{service}: ignoring an event of unknown type `{event_type}`");
            None
        }
        Err(err) => {
            eprintln!("{service}: dropping a malformed message: {err}");
            None
        }
    }
}

/// Logs an event of a channel `service` does not consume (spin.toml routes it none).
pub fn skip_unconsumed(service: &str, event: &Event) {
    eprintln!("{service}: ignoring a `{}` event", event.channel());
}

/// `application/json`, in any case, with or without parameters such as `charset`.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(DATA_CONTENT_TYPE)
}

/// Whether an event's `incoming` version should replace a replica at `stored`
/// (`None`: no replica yet).
///
/// Only strictly newer versions apply: a duplicate or a late, older event is ignored.
/// A gap (`stored + 1 < incoming`, an event lost by pub/sub) still applies, since the
/// event carries the whole state and waiting for the missing one would wait forever.
pub fn is_newer(incoming: u64, stored: Option<u64>) -> bool {
    stored.is_none_or(|stored| incoming > stored)
}

impl OrderStatus {
    /// The WIT case name, which is also the wire and API form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Cancelled => "cancelled",
            Self::Complete => "complete",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not an order status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status `{0}` (expected created, cancelled or complete)")]
pub struct UnknownOrderStatus(pub String);

impl FromStr for OrderStatus {
    type Err = UnknownOrderStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "created" => Ok(Self::Created),
            "cancelled" => Ok(Self::Cancelled),
            "complete" => Ok(Self::Complete),
            other => Err(UnknownOrderStatus(other.to_owned())),
        }
    }
}

impl Serialize for OrderStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OrderStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
