//! The HTTP/1.1 server of an ironfaas `rust` function: calls `function::handle` per request.
//!
//! Standard library only. One thread per connection; keep-alive, `Content-Length` and chunked
//! request bodies, `Expect: 100-continue`; every response carries `Content-Length`.
//! Listens on the Unix socket in `$IRONFAAS_SOCKET`, else on `$HOST:$PORT` (default
//! `0.0.0.0:8080`), then writes one byte to the descriptor in `$IRONFAAS_READY_FD` (if set)
//! and closes it. `GET /_/health` answers `200 OK` (`503` while draining).
//! A handler that panics answers `500 Internal Server Error`; the server keeps serving.
//! SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::raw::{c_int, c_void};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ironfaas_function::{percent_decode, Headers, Request, Response};

/// Longest request line or header line.
const MAX_LINE: usize = 64 * 1024;
/// Most header fields in one request (or chunked trailer).
const MAX_HEADERS: usize = 100;
/// Reads of a connection go through a buffer this big.
const READ_BUFFER: usize = 16 * 1024;
/// Bodies up to this size are sent in the same write as the response head.
const COALESCE: usize = 64 * 1024;

/// Set by SIGTERM/SIGINT: answer with `Connection: close`, health says 503.
static DRAINING: AtomicBool = AtomicBool::new(false);
/// Requests being read, handled or answered.
static IN_FLIGHT: Mutex<usize> = Mutex::new(0);
/// Notified when `IN_FLIGHT` drops to 0.
static IDLE: Condvar = Condvar::new();
/// The signal handler writes one byte here (a socket pair end).
static SIGNAL_FD: AtomicI32 = AtomicI32::new(-1);

const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;

extern "C" {
    fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
}

extern "C" fn on_signal(_signum: c_int) {
    let fd = SIGNAL_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the buffer is a static byte.
        unsafe {
            write(fd, b"x".as_ptr().cast(), 1);
        }
    }
}

/// Why a connection stops.
enum Fail {
    /// The peer went away (or a read/write failed).
    Gone,
    /// The request cannot be served: answer this status and close.
    Bad(u16, &'static str),
}

impl From<io::Error> for Fail {
    fn from(_: io::Error) -> Fail {
        Fail::Gone
    }
}

/// Counts a request as in flight while alive.
struct InFlight;

impl InFlight {
    fn enter() -> InFlight {
        *IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut n = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            IDLE.notify_all();
        }
    }
}

/// One line including its `\n`; `None` at end of stream before any byte.
fn read_line(reader: &mut impl BufRead, too_long: u16) -> Result<Option<Vec<u8>>, Fail> {
    let mut line = Vec::new();
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Fail::Gone),
        };
        if buf.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(Fail::Gone)
            };
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if line.len() > MAX_LINE {
            return Err(Fail::Bad(too_long, "line too long"));
        }
        if done {
            return Ok(Some(line));
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line == b"\r\n" || line == b"\n"
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Header text: UTF-8 if it is, else Latin-1 (lossless either way).
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// Header fields up to the blank line.
fn read_fields(reader: &mut impl BufRead) -> Result<Vec<(String, String)>, Fail> {
    let mut pairs = Vec::new();
    loop {
        let line = read_line(reader, 431)?.ok_or(Fail::Gone)?;
        if is_blank(&line) {
            return Ok(pairs);
        }
        if pairs.len() >= MAX_HEADERS {
            return Err(Fail::Bad(431, "too many header fields"));
        }
        let line = trim_line(&line);
        let colon = line.iter().position(|&b| b == b':');
        let Some(colon) = colon else {
            return Err(Fail::Bad(400, "malformed header field"));
        };
        let name = &line[..colon];
        if !is_token(name) {
            return Err(Fail::Bad(400, "malformed header field"));
        }
        pairs.push((text(name), text(trim_ows(&line[colon + 1..]))));
    }
}

/// Reads exactly `n` bytes onto `body`.
fn read_exact_into(reader: &mut impl BufRead, n: u64, body: &mut Vec<u8>) -> Result<(), Fail> {
    let want = body.len() as u64 + n;
    reader.take(n).read_to_end(body)?;
    if (body.len() as u64) < want {
        return Err(Fail::Gone);
    }
    Ok(())
}

/// Decodes a chunked body (trailer fields are read and dropped).
fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, Fail> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader, 400)?.ok_or(Fail::Gone)?;
        let line = trim_line(&line);
        let size = line.split(|&b| b == b';').next().unwrap_or(b"");
        let size = trim_ows(size);
        if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(Fail::Bad(400, "invalid chunk size"));
        }
        let size = u64::from_str_radix(std::str::from_utf8(size).unwrap_or("x"), 16)
            .map_err(|_| Fail::Bad(400, "invalid chunk size"))?;
        if size == 0 {
            read_fields(reader)?;
            return Ok(body);
        }
        read_exact_into(reader, size, &mut body)?;
        let end = read_line(reader, 400)?.ok_or(Fail::Gone)?;
        if !is_blank(&end) {
            return Err(Fail::Bad(400, "chunk not followed by CRLF"));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        422 => "Unprocessable Content",
        425 => "Too Early",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// The current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Why a handler's response cannot be sent, if it cannot.
fn invalid(resp: &Response) -> Option<String> {
    if !(200..=999).contains(&resp.status) {
        return Some(format!(
            "invalid status {} (must be 200 to 999)",
            resp.status
        ));
    }
    for (name, value) in &resp.headers {
        if !is_token(name.as_bytes()) || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Some(format!("invalid response header {name:?}: {value:?}"));
        }
    }
    None
}

/// The response head (and the body if `with_body`); false in `.1` if the connection closes.
fn encode(resp: &Response, mut keep_alive: bool, http10: bool, with_body: bool) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(256 + if with_body { resp.body.len() } else { 0 });
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (name, value) in &resp.headers {
        if name.eq_ignore_ascii_case("connection") {
            if value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
            {
                keep_alive = false;
            }
            continue;
        }
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            continue;
        }
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let no_body = resp.status == 204 || resp.status == 304;
    if !no_body {
        let _ = write!(out, "Content-Length: {}\r\n", resp.body.len());
    }
    let _ = write!(out, "Date: {}\r\n", http_date());
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if with_body && !no_body {
        out.extend_from_slice(&resp.body);
    }
    (out, keep_alive)
}

fn plain(status: u16, body: &str) -> Response {
    Response::text(body).with_status(status)
}

/// Sends `resp`; returns whether the connection stays open.
fn send(
    writer: &mut impl Write,
    resp: &Response,
    keep_alive: bool,
    http10: bool,
    head: bool,
) -> Result<bool, Fail> {
    let inline = !head && resp.body.len() <= COALESCE;
    let (bytes, keep_alive) = encode(resp, keep_alive, http10, inline);
    writer.write_all(&bytes)?;
    if !head && !inline && resp.status != 204 && resp.status != 304 {
        writer.write_all(&resp.body)?;
    }
    writer.flush()?;
    Ok(keep_alive)
}

/// Serves one request; `Ok(false)` when the connection is to be closed.
fn serve_one(reader: &mut impl BufRead, writer: &mut impl Write) -> Result<bool, Fail> {
    // Wait for the first byte of the next request; from then on it is in flight.
    loop {
        match reader.fill_buf() {
            Ok([]) => return Ok(false),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Fail::Gone),
        }
    }
    let _in_flight = InFlight::enter();
    let mut line = match read_line(reader, 414)? {
        Some(line) => line,
        None => return Ok(false),
    };
    let mut blank = 0;
    while is_blank(&line) {
        blank += 1;
        if blank > 4 {
            return Err(Fail::Bad(400, "empty request line"));
        }
        line = read_line(reader, 414)?.ok_or(Fail::Gone)?;
    }
    let parts: Vec<&[u8]> = trim_line(&line).split(|&b| b == b' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(Fail::Bad(400, "malformed request line"));
    };
    if !is_token(method) || target.is_empty() {
        return Err(Fail::Bad(400, "malformed request line"));
    }
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        v if v.starts_with(b"HTTP/") => {
            return Err(Fail::Bad(505, "only HTTP/1.0 and HTTP/1.1 are supported"))
        }
        _ => return Err(Fail::Bad(400, "malformed request line")),
    };
    let headers = Headers::new(read_fields(reader)?);

    let tokens = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    };
    let connection = tokens("connection");
    let mut keep_alive = if http10 {
        connection.iter().any(|t| t == "keep-alive")
    } else {
        !connection.iter().any(|t| t == "close")
    };
    let mut chunked = false;
    let mut length = 0u64;
    if headers.contains("transfer-encoding") {
        if tokens("transfer-encoding") != ["chunked"] {
            return Err(Fail::Bad(501, "unsupported Transfer-Encoding"));
        }
        chunked = true;
        if headers.contains("content-length") {
            keep_alive = false;
        }
    } else if headers.contains("content-length") {
        let mut values = headers
            .get_all("content-length")
            .flat_map(|v| v.split(','))
            .map(str::trim);
        let first = values.next().unwrap_or("");
        if values.any(|v| v != first) {
            return Err(Fail::Bad(400, "conflicting Content-Length values"));
        }
        if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Fail::Bad(400, "invalid Content-Length"));
        }
        length = first
            .parse()
            .map_err(|_| Fail::Bad(400, "invalid Content-Length"))?;
    }
    if let Some(expect) = headers.get("expect") {
        if !expect.trim().eq_ignore_ascii_case("100-continue") {
            return Err(Fail::Bad(417, "unsupported Expect"));
        }
        if !http10 && (chunked || length > 0) {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            writer.flush()?;
        }
    }
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let mut body = Vec::with_capacity(length.min(1 << 20) as usize);
        read_exact_into(reader, length, &mut body)?;
        body
    };

    let target = text(target);
    let (raw_path, query) = target.split_once('?').unwrap_or((&target, ""));
    let raw_path = if raw_path.starts_with('/') || raw_path == "*" {
        raw_path
    } else {
        // Absolute form: http://host/path
        match raw_path.split_once("://") {
            Some((scheme, rest))
                if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                rest.find('/').map_or("/", |i| &rest[i..])
            }
            _ => return Err(Fail::Bad(400, "malformed request target")),
        }
    };
    let method = text(method);
    let head = method == "HEAD";
    let draining = DRAINING.load(Ordering::SeqCst);

    if (method == "GET" || head) && raw_path == "/_/health" {
        if draining {
            send(writer, &plain(503, "Draining\n"), false, http10, head)?;
            return Ok(false);
        }
        return send(writer, &plain(200, "OK"), keep_alive, http10, head);
    }

    let request = Request {
        method,
        path: percent_decode(raw_path, false),
        query: query.to_string(),
        headers,
        body,
    };
    let described = format!("{} {}", request.method, target);
    let resp = match panic::catch_unwind(AssertUnwindSafe(|| function::handle(request))) {
        Ok(resp) => match invalid(&resp) {
            None => resp,
            Some(why) => {
                eprintln!("rust: {described}: {why}; answered 500");
                plain(500, "Internal Server Error")
            }
        },
        Err(_) => {
            eprintln!("rust: the handler panicked in {described}; answered 500");
            plain(500, "Internal Server Error")
        }
    };
    let keep_alive = keep_alive && !DRAINING.load(Ordering::SeqCst);
    send(writer, &resp, keep_alive, http10, head)
}

/// Serves requests on one connection until it closes.
fn serve<R: Read, W: Write>(reader: R, mut writer: W) {
    let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
    loop {
        match serve_one(&mut reader, &mut writer) {
            Ok(true) => {}
            Ok(false) | Err(Fail::Gone) => return,
            Err(Fail::Bad(status, message)) => {
                let _ = send(
                    &mut writer,
                    &plain(status, &format!("{message}\n")),
                    false,
                    false,
                    false,
                );
                return;
            }
        }
    }
}

enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

/// Binds `$IRONFAAS_SOCKET`, else `$HOST:$PORT`.
fn listen() -> io::Result<(Listener, String)> {
    if let Some(path) = std::env::var_os("IRONFAAS_SOCKET").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let where_ = format!("unix:{}", path.display());
        return Ok((Listener::Unix(UnixListener::bind(&path)?, path), where_));
    }
    let host = std::env::var("HOST").ok().filter(|h| !h.is_empty());
    let host = host.unwrap_or_else(|| "0.0.0.0".to_string());
    let port = std::env::var("PORT").ok().filter(|p| !p.is_empty());
    let port = port.unwrap_or_else(|| "8080".to_string());
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("rust: PORT must be a port number, got {port:?}");
        std::process::exit(2);
    };
    let listener = TcpListener::bind((host.as_str(), port))?;
    Ok((Listener::Tcp(listener), format!("{host}:{port}")))
}

/// Tells the platform that connections are accepted: one byte to `$IRONFAAS_READY_FD`.
fn signal_ready(fd: Option<c_int>) {
    if let Some(fd) = fd.filter(|&fd| fd > 2) {
        // SAFETY: the platform handed this descriptor to this process for exactly this;
        // nothing else in the process uses it, and the File closes it when dropped.
        let mut pipe = unsafe { File::from_raw_fd(fd) };
        let _ = pipe.write_all(b"1");
    }
}

/// On SIGTERM/SIGINT: stop accepting, wait for the requests in flight, exit 0.
fn drain(mut signals: UnixStream, wake: Option<SocketAddr>, socket_path: Option<PathBuf>) {
    let mut byte = [0u8; 1];
    loop {
        match signals.read(&mut byte) {
            Ok(1) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
    DRAINING.store(true, Ordering::SeqCst);
    // Wake the accept loop so that it closes the listening socket.
    match (&socket_path, wake) {
        (Some(path), _) => drop(UnixStream::connect(path)),
        (None, Some(addr)) => drop(TcpStream::connect_timeout(&addr, Duration::from_secs(1))),
        _ => {}
    }
    if let Some(path) = &socket_path {
        let _ = std::fs::remove_file(path);
    }
    let mut n = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
    while *n > 0 {
        n = IDLE.wait(n).unwrap_or_else(|e| e.into_inner());
    }
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    std::process::exit(0);
}

fn spawn_connection(serve: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name("conn".into()).spawn(serve) {
        eprintln!("rust: cannot start a thread for a connection: {e}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn main() {
    // Read (and hide from child processes) before any other thread exists.
    let ready_fd = std::env::var("IRONFAAS_READY_FD")
        .ok()
        .and_then(|v| v.parse().ok());
    std::env::remove_var("IRONFAAS_READY_FD");

    let (signals_in, signals_out) = UnixStream::pair().expect("socketpair");
    SIGNAL_FD.store(signals_in.into_raw_fd(), Ordering::SeqCst);
    // SAFETY: on_signal only calls write(2), which is async-signal-safe.
    unsafe {
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
    }

    let (listener, where_) = match listen() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rust: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    let (wake, socket_path) = match &listener {
        Listener::Unix(_, path) => (None, Some(path.clone())),
        Listener::Tcp(l) => (
            l.local_addr().ok().map(|mut addr| {
                if addr.ip().is_unspecified() {
                    addr.set_ip(match addr.ip() {
                        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    });
                }
                addr
            }),
            None,
        ),
    };
    eprintln!("rust: listening on {where_}");
    signal_ready(ready_fd);
    std::thread::spawn(move || drain(signals_out, wake, socket_path));

    let idle = || std::thread::sleep(Duration::from_millis(10));
    match listener {
        Listener::Unix(listener, _) => {
            for conn in listener.incoming() {
                match conn {
                    Ok(conn) => match conn.try_clone() {
                        Ok(reader) => spawn_connection(move || serve(reader, conn)),
                        Err(_) => idle(),
                    },
                    Err(_) => idle(),
                }
                if DRAINING.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
        Listener::Tcp(listener) => {
            for conn in listener.incoming() {
                match conn {
                    Ok(conn) => {
                        let _ = conn.set_nodelay(true);
                        match conn.try_clone() {
                            Ok(reader) => spawn_connection(move || serve(reader, conn)),
                            Err(_) => idle(),
                        }
                    }
                    Err(_) => idle(),
                }
                if DRAINING.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
    }
    // The listening socket is closed; the drain thread exits the process.
    loop {
        std::thread::park();
    }
}
