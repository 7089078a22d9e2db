//! Limits on what a client sends: a request body's size and how long it may take to arrive.
//! [`GuardedBody`] wraps a request body and fails it with a [`BodyLimitError`] when either is
//! crossed; [`refusal`] turns that error into the client's answer (413 or 408).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::body::BoxError;

/// Why a request body was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyLimitError {
    /// More bytes than the limit.
    #[error(
        "the request body is larger than the limit of {limit} bytes; send less, or raise the \
         gateway's limit ({flag})"
    )]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
        /// The `serve` flag that sets it.
        flag: &'static str,
    },
    /// The body did not arrive in time.
    #[error(
        "the request body did not arrive within the read timeout ({}); the client sent too \
         slowly or stopped sending",
        ironfaas_spec::duration::format_duration(*.0)
    )]
    TooSlow(Duration),
}

impl BodyLimitError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyLimitError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyLimitError::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// How long a body may take.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// No limit of its own (a later deadline bounds it, e.g. the upstream timeout).
    Unbounded,
    /// The whole body within this long.
    Total(Duration),
    /// Some bytes at least every this long (for uploads that may be big).
    Stall(Duration),
}

/// A request body with a size limit and a pace.
pub struct GuardedBody<B> {
    inner: B,
    left: u64,
    limit: u64,
    flag: &'static str,
    pace: Pace,
    timer: Option<Pin<Box<Sleep>>>,
    failed: bool,
}

impl<B> GuardedBody<B> {
    /// Wraps `inner`: at most `limit` bytes (`flag` is the setting that raises it) at `pace`.
    pub fn new(inner: B, limit: u64, flag: &'static str, pace: Pace) -> Self {
        let timer = match pace {
            Pace::Unbounded => None,
            Pace::Total(d) | Pace::Stall(d) => Some(Box::pin(tokio::time::sleep(d))),
        };
        GuardedBody {
            inner,
            left: limit,
            limit,
            flag,
            pace,
            timer,
            failed: false,
        }
    }

    fn fail(&mut self, e: BodyLimitError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.failed = true;
        Poll::Ready(Some(Err(Box::new(e))))
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if let (Some(timer), Pace::Total(d) | Pace::Stall(d)) = (&mut this.timer, this.pace)
                {
                    ready!(timer.as_mut().poll(cx));
                    return this.fail(BodyLimitError::TooSlow(d));
                }
                return Poll::Pending;
            }
        };
        let Some(frame) = frame else {
            return Poll::Ready(None);
        };
        let frame = frame.map_err(Into::into)?;
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            if len > this.left {
                return this.fail(BodyLimitError::TooLarge {
                    limit: this.limit,
                    flag: this.flag,
                });
            }
            this.left -= len;
            if let (Some(timer), Pace::Stall(d)) = (&mut this.timer, this.pace) {
                timer.as_mut().reset(Instant::now() + d);
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The body length `Content-Length` declares, if it is a number.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Refuses a request up front when its `Content-Length` is over `limit`.
pub fn check_declared_length(
    headers: &HeaderMap,
    limit: u64,
    flag: &'static str,
) -> Result<(), BodyLimitError> {
    match declared_length(headers) {
        Some(n) if n > limit => Err(BodyLimitError::TooLarge { limit, flag }),
        _ => Ok(()),
    }
}

/// The [`BodyLimitError`] behind `error`, if a guarded body caused it.
pub fn cause(error: &(dyn std::error::Error + 'static)) -> Option<BodyLimitError> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(limit) = e.downcast_ref::<BodyLimitError>() {
            return Some(*limit);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::channel::Channel;
    use http_body_util::{BodyExt, StreamBody};

    type Chunks = StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>,
    >;

    fn chunks(parts: &[&'static str]) -> Chunks {
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_body_within_the_limit_passes_whole() {
        let body = GuardedBody::new(chunks(&["abc", "def"]), 6, "--max-body", Pace::Unbounded);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abcdef");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_fails_with_413() {
        let body = GuardedBody::new(chunks(&["abc", "defg"]), 6, "--max-body", Pace::Unbounded);
        let e = body.collect().await.unwrap_err();
        let limit = cause(e.as_ref()).unwrap();
        assert_eq!(limit.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(limit.to_string().contains("limit of 6 bytes"), "{limit}");
        assert!(limit.to_string().contains("--max-body"), "{limit}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_with_408() {
        let (mut tx, rx) = Channel::<Bytes>::new(4);
        let body = GuardedBody::new(
            rx,
            1 << 20,
            "--max-body",
            Pace::Stall(Duration::from_secs(5)),
        );
        let reader = tokio::spawn(body.collect());
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            tx.send_data(Bytes::from_static(b"x")).await.unwrap();
        }
        // Sixteen seconds in all, never five without a byte: still alive. Now it stops.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let e = reader.await.unwrap().unwrap_err();
        assert_eq!(
            cause(e.as_ref()),
            Some(BodyLimitError::TooSlow(Duration::from_secs(5)))
        );
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_total_pace_counts_from_the_start() {
        let (mut tx, rx) = Channel::<Bytes>::new(4);
        let body = GuardedBody::new(
            rx,
            1 << 20,
            "--max-body",
            Pace::Total(Duration::from_secs(5)),
        );
        let reader = tokio::spawn(body.collect());
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let _ = tx.send_data(Bytes::from_static(b"x")).await;
        }
        let e = reader.await.unwrap().unwrap_err();
        assert_eq!(
            cause(e.as_ref()).map(|l| l.status()),
            Some(StatusCode::REQUEST_TIMEOUT)
        );
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_up_front() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "11".parse().unwrap());
        assert!(check_declared_length(&headers, 10, "--max-body").is_err());
        assert!(check_declared_length(&headers, 11, "--max-body").is_ok());
        assert!(check_declared_length(&HeaderMap::new(), 0, "--max-body").is_ok());
    }
}
