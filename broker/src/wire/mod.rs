//! The MQTT wire, and the one place where rumqttd's protocol types meet ours.
//!
//! Decoding is rumqttd's v4/v5 codecs, guarded ([`decode`]): packets a client may
//! not send are refused before a codec sees them (some decoders reach
//! `unreachable!`), a codec panic becomes a malformed-packet error, and each
//! packet is converted at once into the broker's own [`Inbound`] types.
//!
//! Encoding ([`encode`]) goes through rumqttd's writers where they can express the
//! packet (CONNACK, acknowledgements, SUBACK, UNSUBACK, PINGRESP). PUBLISH and the
//! MQTT 5 DISCONNECT are written here: rumqttd's `Publish` keeps its QoS and packet
//! id crate-private (a broker cannot build a QoS 1 delivery with it without copying
//! the payload twice), and its v5 DISCONNECT writer emits a wrong length.

pub mod decode;
pub mod encode;

use bytes::Bytes;
use mqgate_kit::PublishProperties;

pub use decode::{peek_connect, read, ConnectPeek};

/// The protocol level a connection speaks, fixed by its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5.
    V5,
}

impl Version {
    pub fn level(&self) -> u8 {
        match self {
            Version::V4 => 4,
            Version::V5 => 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("need more bytes")]
    Incomplete,
    #[error("packet type {0} may not be sent by a client")]
    ForbiddenPacket(u8),
    #[error("packet larger than {0} bytes")]
    TooLarge(usize),
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("protocol error: {0}")]
    Protocol(&'static str),
}

/// A packet a client sent, in the broker's terms.
#[derive(Debug)]
pub enum Inbound {
    Connect(Box<ConnectRequest>),
    Publish(Box<InPublish>),
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Subscribe(InSubscribe),
    Unsubscribe { pkid: u16, filters: Vec<String> },
    PingReq,
    Disconnect(InDisconnect),
}

/// A decoded CONNECT.
#[derive(Debug)]
pub struct ConnectRequest {
    pub version: Version,
    pub client_id: String,
    pub clean_start: bool,
    pub keepalive: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub will: Option<InWill>,
    /// MQTT 5 properties; `None` where absent (and always for 3.1.1).
    pub session_expiry: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub max_packet_size: Option<u32>,
    pub topic_alias_maximum: Option<u16>,
    pub request_problem_info: Option<u8>,
    pub authentication_method: Option<String>,
}

#[derive(Debug)]
pub struct InWill {
    pub topic: Bytes,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    pub delay_interval: Option<u32>,
    pub properties: PublishProperties,
}

#[derive(Debug)]
pub struct InPublish {
    /// Raw topic bytes (validated as UTF-8 by the connection).
    pub topic: Bytes,
    pub payload: Bytes,
    pub qos: u8,
    pub dup: bool,
    pub retain: bool,
    pub pkid: u16,
    pub properties: PublishProperties,
    pub topic_alias: Option<u16>,
    /// A client may not send subscription identifiers; the connection refuses them.
    pub has_subscription_ids: bool,
}

#[derive(Debug)]
pub struct InSubscribe {
    pub pkid: u16,
    pub filters: Vec<InFilter>,
    pub subscription_id: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct InFilter {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: u8,
}

#[derive(Debug)]
pub struct InDisconnect {
    pub reason_code: u8,
    pub session_expiry: Option<u32>,
}

/// MQTT 5 reason codes the broker sends.
pub mod reason {
    pub const SUCCESS: u8 = 0x00;
    pub const DISCONNECT_WITH_WILL: u8 = 0x04;
    pub const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
    pub const UNSPECIFIED: u8 = 0x80;
    pub const MALFORMED_PACKET: u8 = 0x81;
    pub const PROTOCOL_ERROR: u8 = 0x82;
    pub const IMPLEMENTATION_SPECIFIC: u8 = 0x83;
    pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
    pub const CLIENT_ID_NOT_VALID: u8 = 0x85;
    pub const BAD_USERNAME_OR_PASSWORD: u8 = 0x86;
    pub const NOT_AUTHORIZED: u8 = 0x87;
    pub const SERVER_UNAVAILABLE: u8 = 0x88;
    pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
    pub const BAD_AUTHENTICATION_METHOD: u8 = 0x8C;
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    pub const PACKET_ID_NOT_FOUND: u8 = 0x92;
    pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    pub const QUOTA_EXCEEDED: u8 = 0x97;
    pub const ADMINISTRATIVE_ACTION: u8 = 0x98;
    pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0x9E;
}
