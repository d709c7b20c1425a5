//! The QoS machinery of one session: the queue of deliveries, the window of QoS
//! 1/2 deliveries in flight towards the client, and the QoS 2 packet ids received
//! from it that await their PUBREL.

use std::collections::VecDeque;

use tokio::time::Instant;

use super::{AwaitingRelease, FlowLimits, Queue};
use crate::message::Delivery;

/// A QoS 1/2 delivery sent and not yet completed.
#[derive(Debug)]
pub struct InFlight {
    pub pkid: u16,
    pub delivery: Delivery,
    /// QoS 2: PUBREC received, PUBREL sent, PUBCOMP awaited.
    pub released: bool,
}

/// A delivery ready to be written: `pkid` is 0 for QoS 0.
#[derive(Debug)]
pub struct Ready {
    pub pkid: u16,
    pub delivery: Delivery,
}

/// What a resumed session must send again, in order.
#[derive(Debug)]
pub enum Resend {
    /// A PUBLISH not acknowledged (sent again with DUP).
    Publish(Ready),
    /// A PUBREL not completed.
    Release(u16),
}

#[derive(Debug, Default)]
pub(super) struct Flow {
    pub queue: Queue,
    /// In the order sent (resends keep it). Acknowledgements mostly come in
    /// that order: the oldest leaves from the front without moving the rest.
    inflight: VecDeque<InFlight>,
    pub awaiting_release: AwaitingRelease,
    pub limits: FlowLimits,
    next_pkid: u16,
    /// How many packet ids after `next_pkid` are known not to be in flight:
    /// ids are taken in turn, so one look at the window tells how far the
    /// next one in flight lies ahead, and the ids up to it need no look.
    free_ahead: u16,
}

/// Packet ids run 1..=65535 and then begin again.
const PKIDS: u32 = u16::MAX as u32;

impl Flow {
    fn window_full(&self) -> bool {
        self.inflight.len() >= usize::from(self.limits.max_inflight.max(1))
    }

    pub fn has_ready(&self) -> bool {
        match self.queue.front() {
            None => false,
            Some(d) => d.qos == 0 || !self.window_full(),
        }
    }

    /// Puts in deliveries in flight that this flow did not number itself (a
    /// session carried from another node).
    pub fn put_inflight(&mut self, inflight: Vec<InFlight>) {
        self.inflight = inflight.into();
        self.free_ahead = 0;
    }

    /// Takes out the deliveries in flight, oldest first.
    pub fn take_inflight(&mut self) -> Vec<InFlight> {
        std::mem::take(&mut self.inflight).into()
    }

    /// The next packet id not in flight.
    fn allocate_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
            if self.free_ahead > 0 {
                self.free_ahead -= 1;
                return self.next_pkid;
            }
            // how far ahead (in the order ids are taken) the nearest id in flight is
            let candidate = u32::from(self.next_pkid);
            let nearest = self
                .inflight
                .iter()
                .map(|f| (u32::from(f.pkid) + PKIDS - candidate) % PKIDS)
                .min();
            match nearest {
                Some(0) => continue,
                Some(distance) => self.free_ahead = (distance - 1) as u16,
                None => self.free_ahead = (PKIDS - 1) as u16,
            }
            return self.next_pkid;
        }
    }

    /// Moves up to `batch` deliveries out of the queue, QoS 1/2 ones into flight
    /// while the window has room. Returns how many expired messages were dropped.
    pub fn take_ready(&mut self, batch: usize, now: Instant, out: &mut Vec<super::Ready>) -> usize {
        let mut expired = 0;
        let mut taken = 0;
        while taken < batch {
            let Some(front) = self.queue.front() else {
                break;
            };
            if front.message.is_expired(now) {
                self.queue.pop_front();
                expired += 1;
                continue;
            }
            if front.qos > 0 && self.window_full() {
                break;
            }
            let Some(delivery) = self.queue.pop_front() else {
                break;
            };
            let pkid = if delivery.qos > 0 {
                let pkid = self.allocate_pkid();
                self.inflight.push_back(InFlight {
                    pkid,
                    delivery: delivery.clone(),
                    released: false,
                });
                pkid
            } else {
                0
            };
            out.push(Ready { pkid, delivery });
            taken += 1;
        }
        if self.queue.capacity() > 64 && self.queue.len() < self.queue.capacity() / 4 {
            self.queue.shrink_to_fit();
        }
        expired
    }

    pub fn resend(&self) -> Vec<Resend> {
        self.inflight
            .iter()
            .map(|f| match f.released {
                true => Resend::Release(f.pkid),
                false => Resend::Publish(Ready {
                    pkid: f.pkid,
                    delivery: f.delivery.clone(),
                }),
            })
            .collect()
    }

    fn position(&self, pkid: u16, qos: u8, released: bool) -> Option<usize> {
        self.inflight
            .iter()
            .position(|f| f.pkid == pkid && f.delivery.qos == qos && f.released == released)
    }

    fn remove_at(&mut self, i: usize) {
        self.inflight.remove(i);
        if self.inflight.capacity() > 64 && self.inflight.len() < self.inflight.capacity() / 4 {
            self.inflight.shrink_to_fit();
        }
    }

    pub fn acknowledged(&mut self, pkid: u16) -> bool {
        match self.position(pkid, 1, false) {
            Some(i) => {
                self.remove_at(i);
                true
            }
            None => false,
        }
    }

    pub fn received(&mut self, pkid: u16) -> bool {
        if let Some(i) = self.position(pkid, 2, false) {
            self.inflight[i].released = true;
            return true;
        }
        // a PUBREC resent after our PUBREL was lost: still in flight
        self.position(pkid, 2, true).is_some()
    }

    pub fn completed(&mut self, pkid: u16) -> bool {
        match self.position(pkid, 2, true) {
            Some(i) => {
                self.remove_at(i);
                true
            }
            None => false,
        }
    }

    pub fn abandon(&mut self, pkid: u16) {
        if let Some(i) = self.inflight.iter().position(|f| f.pkid == pkid) {
            self.remove_at(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::message::Message;

    fn delivery(qos: u8) -> Delivery {
        Delivery {
            message: Arc::new(Message {
                id: 1,
                topic: "t".into(),
                payload: Bytes::new(),
                qos,
                retain: false,
                properties: None,
                expires_at: None,
                publisher: None,
            }),
            qos,
            retain: false,
            subscription_ids: Vec::new(),
        }
    }

    #[test]
    fn window_holds_back_qos1_but_not_qos0() {
        let mut flow = Flow {
            limits: FlowLimits { max_inflight: 2 },
            ..Flow::default()
        };
        for qos in [1, 1, 1, 0] {
            flow.queue.push_back(delivery(qos));
        }
        let mut out = Vec::new();
        flow.take_ready(10, Instant::now(), &mut out);
        assert_eq!(out.len(), 2);
        assert!(!flow.has_ready());
        assert!(flow.acknowledged(out[0].pkid));
        assert!(
            !flow.acknowledged(out[0].pkid),
            "a second PUBACK finds nothing"
        );
        out.clear();
        flow.take_ready(10, Instant::now(), &mut out);
        // the third QoS 1, then the QoS 0 behind it
        assert_eq!(
            out.iter().map(|r| r.delivery.qos).collect::<Vec<_>>(),
            [1, 0]
        );
    }

    #[test]
    fn qos2_resend_order_and_release() {
        let mut flow = Flow::default();
        flow.queue.push_back(delivery(2));
        flow.queue.push_back(delivery(2));
        let mut out = Vec::new();
        flow.take_ready(10, Instant::now(), &mut out);
        assert!(flow.received(out[0].pkid));
        let resend = flow.resend();
        assert!(matches!(resend[0], Resend::Release(p) if p == out[0].pkid));
        assert!(matches!(&resend[1], Resend::Publish(r) if r.pkid == out[1].pkid));
        assert!(flow.completed(out[0].pkid));
        assert!(!flow.completed(out[1].pkid), "not released yet");
    }

    #[test]
    fn packet_ids_skip_those_in_flight() {
        let mut flow = Flow {
            limits: FlowLimits { max_inflight: 10 },
            next_pkid: u16::MAX - 1,
            ..Flow::default()
        };
        for _ in 0..3 {
            flow.queue.push_back(delivery(1));
        }
        let mut out = Vec::new();
        flow.take_ready(10, Instant::now(), &mut out);
        assert_eq!(
            out.iter().map(|r| r.pkid).collect::<Vec<_>>(),
            [u16::MAX, 1, 2]
        );
    }

    #[test]
    fn a_packet_id_held_in_flight_is_never_given_again() {
        let mut flow = Flow {
            limits: FlowLimits { max_inflight: 3 },
            ..Flow::default()
        };
        // carried from another node: ids this flow did not give out
        let carried = |pkid| InFlight {
            pkid,
            delivery: delivery(1),
            released: false,
        };
        let mut out = Vec::new();
        flow.queue.push_back(delivery(1));
        flow.take_ready(1, Instant::now(), &mut out);
        assert!(flow.acknowledged(out[0].pkid), "packet id 1, given before");
        flow.put_inflight(vec![carried(2), carried(40_000)]);
        let mut given = 0u32;
        // three times round all ids, acknowledging each at once
        while given < 3 * PKIDS {
            flow.queue.push_back(delivery(1));
            out.clear();
            flow.take_ready(1, Instant::now(), &mut out);
            let pkid = out[0].pkid;
            assert!(
                pkid != 0 && pkid != 2 && pkid != 40_000,
                "gave {pkid} again"
            );
            assert!(flow.acknowledged(pkid));
            given += 1;
        }
        assert!(flow.acknowledged(2) && flow.acknowledged(40_000));
        assert_eq!(flow.take_inflight().len(), 0);
    }
}
