//! Replica output: every line a replica writes is stored with its time and replica in a
//! bounded per-function log on disk (two segments of at most `max_bytes` each, so it survives
//! scale to zero and restarts) and sent to anyone following the function's logs.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::StreamExt;
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::provider::{LogRequest, LogStream};
use ironfaas_spec::timestamp::{format_rfc3339_nanos, parse_rfc3339};
use ironfaas_spec::wire::LogEntry;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// Lines longer than this are cut into pieces.
const MAX_LINE: usize = 16 * 1024;
/// Lines a slow follower may fall behind before it misses some.
const FOLLOW_BUFFER: usize = 4096;

/// A line as stored: the API's entry plus a sequence number for following without gaps.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    seq: u64,
    #[serde(flatten)]
    entry: LogEntry,
}

struct Writer {
    file: Option<File>,
    size: u64,
    seq: u64,
}

/// The log of one function.
pub(crate) struct LogStore {
    function: FunctionRef,
    current: PathBuf,
    previous: PathBuf,
    max_bytes: u64,
    writer: Mutex<Writer>,
    /// New lines for followers; made when the first one comes and dropped once none is left,
    /// since its buffer (FOLLOW_BUFFER slots, ~128 KiB) would otherwise be kept for every
    /// function, followed or not.
    live: Mutex<Option<broadcast::Sender<Arc<Stored>>>>,
}

fn read_segment(path: &PathBuf) -> Vec<Stored> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str(&line).ok())
        .collect()
}

impl LogStore {
    /// The log of `function` in `dir`, continuing what is stored there.
    pub fn open(dir: PathBuf, function: FunctionRef, max_bytes: u64) -> LogStore {
        let current = dir
            .join(&function.namespace)
            .join(format!("{}.log", function.name));
        let previous = current.with_extension("log.1");
        let last = |path: &PathBuf| read_segment(path).last().map(|s| s.seq);
        let seq = last(&current).or_else(|| last(&previous)).unwrap_or(0);
        let size = fs::metadata(&current).map_or(0, |m| m.len());
        LogStore {
            function,
            current,
            previous,
            max_bytes,
            writer: Mutex::new(Writer {
                file: None,
                size,
                seq,
            }),
            live: Mutex::new(None),
        }
    }

    /// Stores one line written by `instance`.
    pub fn push(&self, instance: &str, text: String) {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.seq = w.seq.saturating_add(1);
        let stored = Stored {
            seq: w.seq,
            entry: LogEntry {
                name: self.function.name.clone(),
                namespace: self.function.namespace.clone(),
                instance: instance.to_string(),
                timestamp: format_rfc3339_nanos(SystemTime::now()),
                text,
            },
        };
        let Ok(mut line) = serde_json::to_vec(&stored) else {
            return;
        };
        line.push(b'\n');
        if w.size + line.len() as u64 > self.max_bytes {
            w.file = None;
            let _ = fs::rename(&self.current, &self.previous);
            w.size = 0;
        }
        if w.file.is_none() {
            if let Some(dir) = self.current.parent() {
                let _ = fs::create_dir_all(dir);
            }
            w.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.current)
                .ok();
        }
        if let Some(file) = w.file.as_mut()
            && file.write_all(&line).is_ok()
        {
            w.size += line.len() as u64;
        }
        drop(w);
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = live.as_ref() {
            if sender.receiver_count() == 0 {
                *live = None;
            } else {
                let _ = sender.send(Arc::new(stored));
            }
        }
    }

    fn matches(request: &LogRequest, stored: &Stored) -> bool {
        request
            .instance
            .as_ref()
            .is_none_or(|i| *i == stored.entry.instance)
            && request.since.is_none_or(|since| {
                parse_rfc3339(&stored.entry.timestamp).is_ok_and(|at| at >= since)
            })
    }

    /// The stored lines `request` asks for, oldest first, and the last sequence number read.
    fn stored(&self, request: &LogRequest) -> (Vec<Stored>, u64) {
        let mut all = read_segment(&self.previous);
        all.extend(read_segment(&self.current));
        let last = all.last().map_or(0, |s| s.seq);
        let mut lines: Vec<Stored> = all
            .into_iter()
            .filter(|s| Self::matches(request, s))
            .collect();
        if let Some(tail) = request.tail {
            let skip = lines.len().saturating_sub(tail);
            lines.drain(..skip);
        }
        (lines, last)
    }

    /// The last `n` lines of `instance`, for explaining a failed start.
    pub fn tail(&self, instance: &str, n: usize) -> Vec<String> {
        let request = LogRequest {
            function: self.function.clone(),
            instance: Some(instance.to_string()),
            tail: Some(n),
            since: None,
            follow: false,
        };
        self.stored(&request)
            .0
            .into_iter()
            .map(|s| s.entry.text)
            .collect()
    }

    /// The lines `request` asks for; when following, new lines keep coming.
    pub fn stream(&self, request: LogRequest) -> LogStream {
        // A follower subscribes before reading what is stored, so no line falls in between.
        let live = request.follow.then(|| {
            self.live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| broadcast::Sender::new(FOLLOW_BUFFER))
                .subscribe()
        });
        let (stored, last_seq) = self.stored(&request);
        let past = futures_util::stream::iter(stored.into_iter().map(|s| s.entry));
        let Some(live) = live else {
            return Box::pin(past);
        };
        let future = futures_util::stream::unfold(live, move |mut live| {
            let request = request.clone();
            async move {
                loop {
                    match live.recv().await {
                        Ok(s) if s.seq > last_seq && Self::matches(&request, &s) => {
                            return Some((s.entry.clone(), live));
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Box::pin(past.chain(future))
    }

    /// Deletes the stored lines (the function was removed).
    pub fn delete(&self) {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.file = None;
        let _ = fs::remove_file(&self.current);
        let _ = fs::remove_file(&self.previous);
    }
}

/// Reads `reader` line by line into `store` and the platform log until it ends. Whatever a
/// function writes is kept reading: bytes that are not UTF-8 are replaced (U+FFFD), a line
/// longer than [`MAX_LINE`] keeps its start and says it was cut. Stopping early would close
/// the pipe, and the function's next write would fail (SIGPIPE).
pub(crate) fn capture(
    reader: impl AsyncRead + Send + Unpin + 'static,
    store: Arc<LogStore>,
    replica: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::new(reader);
        let mut line = Vec::new();
        while let Ok(Some(cut)) = next_line(&mut reader, &mut line, MAX_LINE).await {
            let mut text = String::from_utf8_lossy(&line).into_owned();
            if cut {
                text.push_str(" [cut: line longer than 16 KiB]");
            }
            tracing::info!(target: "function", "{} {replica}: {text}", store.function);
            store.push(&replica, text);
        }
    })
}

/// Reads the next line into `line` without its `\n` (or `\r\n`), keeping at most `max` bytes
/// of it and skipping the rest. `Some(true)` if it was cut, `None` at the end of the input.
async fn next_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let (mut cut, mut read_any) = (false, false);
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(read_any.then_some(cut));
        }
        read_any = true;
        let end = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..end.unwrap_or(buf.len())];
        let room = max.saturating_sub(line.len());
        cut |= chunk.len() > room;
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = end.map_or(buf.len(), |i| i + 1);
        reader.consume(used);
        if end.is_some() {
            if !cut && line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(cut));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The log of function `f` in `dir`, 1 MiB at most.
    fn store_in(dir: &tempfile::TempDir) -> LogStore {
        LogStore::open(dir.path().to_path_buf(), FunctionRef::parse("f"), 1 << 20)
    }

    fn request(follow: bool) -> LogRequest {
        LogRequest {
            function: FunctionRef::parse("f"),
            instance: None,
            tail: None,
            since: None,
            follow,
        }
    }

    #[tokio::test]
    async fn stores_in_order_and_tails_per_replica() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(store_in(&dir));
        capture(&b"a\nb\n"[..], store.clone(), "f-1".into())
            .await
            .unwrap();
        capture(&b"x\ny\nz"[..], store.clone(), "f-2".into())
            .await
            .unwrap();
        assert_eq!(store.tail("f-2", 2), vec!["y", "z"]);
        let texts: Vec<String> = store.stream(request(false)).map(|e| e.text).collect().await;
        assert_eq!(texts, ["a", "b", "x", "y", "z"]);
        let one: Vec<LogEntry> = store
            .stream(LogRequest {
                instance: Some("f-1".into()),
                tail: Some(1),
                ..request(false)
            })
            .collect()
            .await;
        assert_eq!(
            (one.len(), one[0].text.as_str(), one[0].name.as_str()),
            (1, "b", "f")
        );
    }

    #[tokio::test]
    async fn any_output_is_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(store_in(&dir));
        let mut out = b"plain\nnot \xff utf-8\n".to_vec();
        out.extend(std::iter::repeat_n(b'x', MAX_LINE + 5000));
        out.extend(b"\nwindows\r\n\n\xe2\x82\xactail");
        capture(std::io::Cursor::new(out), store.clone(), "f-1".into())
            .await
            .unwrap();
        let texts = store.tail("f-1", 10);
        assert_eq!(texts.len(), 6, "every line is kept: {:?}", texts);
        assert_eq!(texts[0], "plain");
        assert_eq!(texts[1], "not \u{fffd} utf-8");
        assert_eq!(
            texts[2],
            format!("{} [cut: line longer than 16 KiB]", "x".repeat(MAX_LINE))
        );
        assert_eq!(&texts[3..], ["windows", "", "€tail"]);
    }

    #[tokio::test]
    async fn survives_reopening_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path().to_path_buf(), FunctionRef::parse("f"), 2000);
        for i in 0..200 {
            store.push("f-1", format!("line {i}"));
        }
        drop(store);
        let store = LogStore::open(dir.path().to_path_buf(), FunctionRef::parse("f"), 2000);
        store.push("f-1", "after restart".into());
        let texts: Vec<String> = store.stream(request(false)).map(|e| e.text).collect().await;
        assert_eq!(texts.last().map(String::as_str), Some("after restart"));
        assert_eq!(texts[texts.len() - 2], "line 199");
        assert!(
            texts.len() < 100,
            "two segments of 2000 bytes hold far fewer than 200 lines"
        );
        let on_disk: u64 = fs::read_dir(dir.path().join("openfaas-fn"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= 4000, "{on_disk} bytes on disk");
    }

    #[tokio::test]
    async fn following_streams_new_lines_without_gaps_or_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(store_in(&dir));
        store.push("f-1", "old".into());
        let mut follow = store.stream(request(true));
        assert_eq!(follow.next().await.unwrap().text, "old");
        store.push("f-1", "new".into());
        let next = tokio::time::timeout(Duration::from_secs(5), follow.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.text, "new");
    }

    #[tokio::test]
    async fn the_follow_buffer_exists_only_while_someone_follows() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let following = || store.live.lock().unwrap().is_some();
        store.push("f-1", "one".into());
        let _ = store.stream(request(false));
        assert!(!following(), "reading the log makes no follow buffer");
        let mut follow = store.stream(request(true));
        assert!(following());
        store.push("f-1", "two".into());
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let line = tokio::time::timeout(Duration::from_secs(5), follow.next()).await;
            seen.push(line.unwrap().unwrap().text);
        }
        assert_eq!(seen, ["one", "two"]);
        drop(follow);
        store.push("f-1", "three".into());
        assert!(!following(), "the buffer goes with the last follower");
        let mut again = store.stream(request(true));
        store.push("f-1", "four".into());
        let mut last = String::new();
        while last != "four" {
            let line = tokio::time::timeout(Duration::from_secs(5), again.next()).await;
            last = line.unwrap().unwrap().text;
        }
    }

    #[tokio::test]
    async fn since_filters_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.push("f-1", "before".into());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let since = SystemTime::now();
        store.push("f-1", "after".into());
        let texts: Vec<String> = store
            .stream(LogRequest {
                since: Some(since),
                ..request(false)
            })
            .map(|e| e.text)
            .collect()
            .await;
        assert_eq!(texts, ["after"]);
    }
}
