//! How a block's bytes are laid out.
//!
//! A block is its names, then its events, which name clients and topics by
//! their number in the block. Blocks written now are compact: after the
//! [`COMPACT`] mark every number is a variable-length integer, and each event
//! writes its time and ids as the difference from the event before (the events
//! of a block are close in time and in ids): a 1→1 message with a 64-byte
//! payload and its delivery take about 80 bytes instead of 128. Blocks of the
//! first format (fixed-width numbers, no mark), still in the rows of files
//! written before segments, read as before.

use mqgate_kit::history::Direction;

use super::{Recorded, Stored};

const DELIVERY: u8 = 1;
const HAS_MESSAGE_ID: u8 = 2;
const HAS_CLIENT: u8 = 4;
const HAS_CONNECTION: u8 = 8;
const RETAIN: u8 = 16;

/// The first bytes of a block in the compact format, which every block written
/// now has: as the name count of the first format (a little-endian u32) no
/// block could hold that many names.
pub(super) const COMPACT: [u8; 4] = [0xff; 4];

/// The time, message id and connection id of the event before: an event writes
/// its own as the difference, which for events of a block is small.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Previous {
    at_ms: i64,
    message_id: u64,
    connection_id: u64,
}

/// One event: flags, QoS, then as variable-length integers the time and the
/// optional ids as differences from the event before, the client and the topic
/// by number; (messages only) the payload.
pub(super) fn encode(
    e: &Recorded<'_>,
    at_ms: i64,
    client: Option<u16>,
    topic: u16,
    previous: &mut Previous,
    out: &mut Vec<u8>,
) {
    let flags = if e.is_delivery() { DELIVERY } else { 0 }
        | if e.message_id.is_some() {
            HAS_MESSAGE_ID
        } else {
            0
        }
        | if e.client_id.is_some() { HAS_CLIENT } else { 0 }
        | if e.connection_id.is_some() {
            HAS_CONNECTION
        } else {
            0
        }
        | if e.retain { RETAIN } else { 0 };
    out.push(flags);
    out.push(e.qos);
    varint(zigzag(at_ms.wrapping_sub(previous.at_ms)), out);
    previous.at_ms = at_ms;
    if let Some(id) = e.message_id {
        varint(zigzag(id.wrapping_sub(previous.message_id) as i64), out);
        previous.message_id = id;
    }
    if let Some(id) = e.connection_id {
        varint(zigzag(id.wrapping_sub(previous.connection_id) as i64), out);
        previous.connection_id = id;
    }
    if let Some(client) = client {
        varint(client.into(), out);
    }
    varint(topic.into(), out);
    if !e.is_delivery() {
        bytes(e.payload, out);
    }
}

pub(super) fn bytes(b: &[u8], out: &mut Vec<u8>) {
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// LEB128: seven bits a byte, the low ones first.
pub(super) fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Small differences of either sign as small unsigned numbers.
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    (n >> 1) as i64 ^ -((n & 1) as i64)
}

/// Reads a block's bytes in either format. Bytes that do not decode end what
/// is read (a block is only ever written by [`Builder`](super::Builder)).
#[derive(Clone)]
pub(super) struct Reader<'a> {
    pub buf: &'a [u8],
    compact: bool,
    previous: Previous,
}

impl<'a> Reader<'a> {
    /// The names of the block `buf`, and a reader at its first event.
    pub fn open(buf: &'a [u8]) -> (Vec<&'a [u8]>, Reader<'a>) {
        let compact = buf.starts_with(&COMPACT);
        let mut reader = Reader {
            buf: if compact { &buf[COMPACT.len()..] } else { buf },
            compact,
            previous: Previous::default(),
        };
        let count = if compact {
            reader.varint()
        } else {
            reader
                .split(4)
                .and_then(|n| n.try_into().ok())
                .map(|n| u64::from(u32::from_le_bytes(n)))
        };
        let count = count.unwrap_or(0);
        let mut names = Vec::with_capacity(count.min(u64::from(u16::MAX) + 1) as usize);
        for _ in 0..count {
            match reader.bytes() {
                Some(name) => names.push(name),
                None => break,
            }
        }
        (names, reader)
    }

    fn split(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            self.buf = &[];
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for (i, byte) in self.buf.iter().enumerate().take(10) {
            n |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Some(n);
            }
        }
        self.buf = &[];
        None
    }

    fn u16(&mut self) -> Option<u16> {
        if self.compact {
            return self.varint()?.try_into().ok();
        }
        Some(u16::from_le_bytes(self.split(2)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = if self.compact {
            usize::try_from(self.varint()?).ok()?
        } else {
            u32::from_le_bytes(self.split(4)?.try_into().ok()?) as usize
        };
        self.split(len)
    }

    /// A time or an id: the difference from the one before (compact), or as
    /// it is.
    fn next_of(&mut self, previous: u64) -> Option<u64> {
        if self.compact {
            Some(previous.wrapping_add(unzigzag(self.varint()?) as u64))
        } else {
            Some(u64::from_le_bytes(self.split(8)?.try_into().ok()?))
        }
    }

    pub fn event(&mut self) -> Option<Stored<'a>> {
        let [flags, qos] = <[u8; 2]>::try_from(self.split(2)?).ok()?;
        let at_ms = self.next_of(self.previous.at_ms as u64)? as i64;
        self.previous.at_ms = at_ms;
        let message_id = match flags & HAS_MESSAGE_ID {
            0 => None,
            _ => Some(self.next_of(self.previous.message_id)?),
        };
        self.previous.message_id = message_id.unwrap_or(self.previous.message_id);
        let connection_id = match flags & HAS_CONNECTION {
            0 => None,
            _ => Some(self.next_of(self.previous.connection_id)?),
        };
        self.previous.connection_id = connection_id.unwrap_or(self.previous.connection_id);
        let client = match flags & HAS_CLIENT {
            0 => None,
            _ => Some(self.u16()?),
        };
        let topic = self.u16()?;
        let delivery = flags & DELIVERY != 0;
        let payload = if delivery { &[] } else { self.bytes()? };
        Some(Stored {
            direction: if delivery {
                Direction::Downlink
            } else {
                Direction::Uplink
            },
            message_id,
            at_ms,
            client,
            connection_id,
            topic,
            qos,
            retain: flags & RETAIN != 0,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Builder, Events, Recorded};
    use super::*;

    fn event(
        delivery: bool,
        id: Option<u64>,
        at_ms: i64,
        client: &'static str,
    ) -> Recorded<'static> {
        Recorded {
            direction: if delivery {
                Direction::Downlink
            } else {
                Direction::Uplink
            },
            message_id: id,
            at_ms,
            client_id: Some(client),
            connection_id: Some(if delivery { 9 } else { u64::MAX - 3 }),
            topic: "t/1",
            qos: 2,
            retain: !delivery,
            payload: if delivery { b"" } else { b"payload" },
        }
    }

    #[test]
    fn compact_events_read_back_whatever_their_ids_and_times() {
        let events = [
            event(false, Some(u64::MAX), -5, "a"),
            event(true, Some(u64::MAX), -5, "b"),
            event(false, Some(1), 1_700_000_000_000, "a"),
            event(true, None, 1_700_000_000_000, "b"),
            event(true, Some(0x8000_0000_0000_0000), 1_700_000_000_001, "c"),
        ];
        let mut builder = Builder::new(i64::MIN);
        for e in &events {
            builder.push(e);
        }
        let block = builder.finish().unwrap();
        assert!(block.data.starts_with(&COMPACT));
        let back: Vec<Recorded<'_>> = Events::new(&block.data).collect();
        assert_eq!(back, events);
    }

    #[test]
    fn a_message_and_its_delivery_take_about_80_bytes() {
        let mut builder = Builder::new(0);
        for n in 0..100u64 {
            let at = 1_700_000_000_000 + n as i64 / 10;
            let mut message = event(false, Some(1 << 40 | n), at, "sender@app");
            message.payload = &[b'x'; 64];
            builder.push(&message);
            builder.push(&event(true, Some(1 << 40 | n), at, "receiver@app"));
        }
        let block = builder.finish().unwrap();
        let per_message = block.data.len() / 100;
        // 64 of payload; the fixed format took 128
        assert!((70..=85).contains(&per_message), "{per_message}");
    }

    #[test]
    fn blocks_of_the_first_format_still_read() {
        let mut data = Vec::new();
        data.extend_from_slice(&2u32.to_le_bytes());
        for name in ["a@app", "t/1"] {
            data.extend_from_slice(&(name.len() as u32).to_le_bytes());
            data.extend_from_slice(name.as_bytes());
        }
        // a message of a@app on t/1, then its delivery without a client
        data.extend_from_slice(&[HAS_MESSAGE_ID | HAS_CLIENT | HAS_CONNECTION | RETAIN, 1]);
        data.extend_from_slice(&1_000i64.to_le_bytes());
        data.extend_from_slice(&42u64.to_le_bytes());
        data.extend_from_slice(&7u64.to_le_bytes());
        data.extend_from_slice(&0u16.to_le_bytes());
        data.extend_from_slice(&1u16.to_le_bytes());
        data.extend_from_slice(&2u32.to_le_bytes());
        data.extend_from_slice(b"hi");
        data.extend_from_slice(&[DELIVERY | HAS_MESSAGE_ID, 0]);
        data.extend_from_slice(&1_001i64.to_le_bytes());
        data.extend_from_slice(&42u64.to_le_bytes());
        data.extend_from_slice(&1u16.to_le_bytes());
        let back: Vec<Recorded<'_>> = Events::new(&data).collect();
        assert_eq!(back.len(), 2);
        assert_eq!(
            (
                back[0].message_id,
                back[0].at_ms,
                back[0].client_id,
                back[0].connection_id
            ),
            (Some(42), 1_000, Some("a@app"), Some(7))
        );
        assert_eq!(
            (back[0].topic, back[0].payload, back[0].retain),
            ("t/1", &b"hi"[..], true)
        );
        assert_eq!(
            (
                back[1].direction,
                back[1].message_id,
                back[1].at_ms,
                back[1].client_id
            ),
            (Direction::Downlink, Some(42), 1_001, None)
        );
    }
}
