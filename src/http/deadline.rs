//! A request body that must arrive whole before a deadline. tower-http's body
//! timeout restarts with every frame, so a client sending a byte now and then
//! would hold its connection for ever; this one counts from the request head.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

pub struct DeadlineBody<B = ()> {
    body: B,
    deadline: Instant,
    // armed only once the body makes the reader wait
    timer: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    pub fn new(deadline: Instant) -> Self {
        DeadlineBody {
            body: (),
            deadline,
            timer: None,
            expired: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Turns true when the deadline cuts the body short, so that the answer
    /// can say the request timed out whatever the handler made of the error.
    pub fn expired(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.expired)
    }

    pub fn wrap<B>(self, body: B) -> DeadlineBody<B> {
        DeadlineBody {
            body,
            deadline: self.deadline,
            timer: self.timer,
            expired: self.expired,
        }
    }
}

/// The error a handler's body read gets once the deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time (http.body_read_timeout_secs)")]
pub struct BodyTimeout;

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(BodyTimeout.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
