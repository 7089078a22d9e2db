//! Response bodies the gateway sends: a replica's streamed body, a short message, or an API
//! answer, in one type without boxing on the hot path.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use ironfaas_spec::provider::InflightGuard;
use tokio::time::Sleep;

use crate::proxy::pool::{Pool, Sender};
use crate::request_limits::GuardedBody;

/// The error type of every gateway body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A replica's response body, streamed through. When it has been read to the end its
/// connection goes back to the pool; its in-flight slot is freed when it ends or is dropped;
/// past its deadline it fails, which aborts the client's response.
pub struct ProxiedBody {
    inner: Incoming,
    connection: Option<(Arc<Pool>, Sender)>,
    slot: Option<InflightGuard>,
    deadline: Pin<Box<Sleep>>,
}

impl ProxiedBody {
    /// Wraps a replica's body.
    pub(crate) fn new(
        inner: Incoming,
        pool: Arc<Pool>,
        sender: Sender,
        slot: InflightGuard,
        deadline: Pin<Box<Sleep>>,
    ) -> Self {
        ProxiedBody {
            inner,
            connection: Some((pool, sender)),
            slot: Some(slot),
            deadline,
        }
    }

    fn finish(&mut self, reusable: bool) {
        if let Some((pool, sender)) = self.connection.take()
            && reusable
        {
            pool.put(sender);
        }
        self.slot = None;
    }
}

impl Drop for ProxiedBody {
    fn drop(&mut self) {
        let complete = self.inner.is_end_stream();
        self.finish(complete);
    }
}

/// The function did not finish its response in time.
#[derive(Debug, thiserror::Error)]
#[error("the function's response did not finish before the deadline")]
struct DeadlineExceeded;

impl Body for ProxiedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.finish(false);
            return Poll::Ready(Some(Err(Box::new(DeadlineExceeded))));
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            None => {
                this.finish(true);
                Poll::Ready(None)
            }
            Some(Err(e)) => {
                this.finish(false);
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Some(Ok(frame)) => {
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body on its way to a replica: a caller's, streamed through, or a stored one
/// (an asynchronous call).
pub enum UpstreamBody {
    /// Streamed from the caller, within the gateway's body limit.
    Streamed(GuardedBody<Incoming>),
    /// Complete in memory.
    Buffered(Full<Bytes>),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Streamed(b) => Pin::new(b).poll_frame(cx),
            UpstreamBody::Buffered(b) => Pin::new(b).poll_frame(cx).map_err(|e| match e {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Streamed(b) => b.is_end_stream(),
            UpstreamBody::Buffered(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Streamed(b) => b.size_hint(),
            UpstreamBody::Buffered(b) => b.size_hint(),
        }
    }
}

/// Any body the gateway answers with.
pub enum GatewayBody {
    /// A replica's response.
    Proxied(ProxiedBody),
    /// A complete short body (errors, small answers).
    Full(Full<Bytes>),
    /// An API answer from axum.
    Api(axum::body::Body),
}

impl GatewayBody {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        GatewayBody::Full(Full::new(bytes.into()))
    }

    /// An empty body.
    pub fn empty() -> Self {
        GatewayBody::Full(Full::new(Bytes::new()))
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            GatewayBody::Proxied(b) => Pin::new(b).poll_frame(cx),
            GatewayBody::Full(b) => Pin::new(b).poll_frame(cx).map_err(|e| match e {}),
            GatewayBody::Api(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GatewayBody::Proxied(b) => b.is_end_stream(),
            GatewayBody::Full(b) => b.is_end_stream(),
            GatewayBody::Api(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GatewayBody::Proxied(b) => b.size_hint(),
            GatewayBody::Full(b) => b.size_hint(),
            GatewayBody::Api(b) => b.size_hint(),
        }
    }
}
