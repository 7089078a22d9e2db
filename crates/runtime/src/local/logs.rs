//! Replica output: every line a replica writes is logged with its function and replica, and
//! the last lines are kept per function so a failed start can be explained.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use futures_util::StreamExt;
use tokio::io::AsyncRead;
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, LinesCodec};

/// Lines longer than this are cut into pieces.
const MAX_LINE: usize = 16 * 1024;

/// One line of replica output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine {
    /// When it was read.
    pub at: SystemTime,
    /// The replica that wrote it.
    pub replica: String,
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    /// The text, without the newline.
    pub text: String,
}

/// The last lines of a function's replicas.
#[derive(Debug)]
pub(crate) struct LogRing {
    lines: Mutex<VecDeque<LogLine>>,
    capacity: usize,
}

impl LogRing {
    /// A ring keeping `capacity` lines.
    pub fn new(capacity: usize) -> Self {
        LogRing {
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(256))),
            capacity,
        }
    }

    fn push(&self, line: LogLine) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `n` lines written by `replica`, oldest first.
    pub fn tail(&self, replica: &str, n: usize) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<String> = lines
            .iter()
            .rev()
            .filter(|l| l.replica == replica)
            .take(n)
            .map(|l| l.text.clone())
            .collect();
        out.reverse();
        out
    }
}

/// Reads `reader` line by line into `ring` and the platform log until it ends.
pub(crate) fn capture(
    reader: impl AsyncRead + Send + Unpin + 'static,
    ring: std::sync::Arc<LogRing>,
    function: String,
    replica: String,
    stream: &'static str,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = FramedRead::new(reader, LinesCodec::new_with_max_length(MAX_LINE));
        while let Some(next) = lines.next().await {
            let text = match next {
                Ok(text) => text,
                Err(tokio_util::codec::LinesCodecError::MaxLineLengthExceeded) => {
                    "[line longer than 16 KiB cut]".to_string()
                }
                Err(_) => break,
            };
            tracing::info!(target: "function", "{function} {replica} {stream}: {text}");
            ring.push(LogLine {
                at: SystemTime::now(),
                replica: replica.clone(),
                stream,
                text,
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn captures_lines_per_replica_and_bounds_them() {
        let ring = Arc::new(LogRing::new(3));
        capture(
            &b"a\nb\n"[..],
            ring.clone(),
            "f".into(),
            "f-1".into(),
            "stdout",
        )
        .await
        .unwrap();
        capture(
            &b"x\ny\nz"[..],
            ring.clone(),
            "f".into(),
            "f-2".into(),
            "stderr",
        )
        .await
        .unwrap();
        assert_eq!(ring.tail("f-2", 10), vec!["x", "y", "z"]);
        assert!(
            ring.tail("f-1", 10).is_empty(),
            "capacity 3 keeps only the newest lines"
        );
        assert_eq!(ring.tail("f-2", 1), vec!["z"]);
    }
}
