//! A loopback HTTP server that stands in for the Hugging Face hub and for plain file hosts,
//! serving real files from disk with `Range` support, and misbehaving on request.
//!
//! It answers the hub's model-info endpoint (`/api/models/ORG/NAME/revision/REV`, with the
//! commit and the file list) and `/ORG/NAME/resolve/REV/FILE` (with `ETag` and
//! `X-Repo-Commit`, optionally as a redirect to another server, as the hub redirects to its
//! CDN), and any other path registered with [`Server::file`]. Latency, a bandwidth cap and
//! the faults of [`Fault`] can be injected; every request is recorded ([`Request`]) so tests
//! can check what was asked for and which requests carried a credential.
//!
//! Only what the tests need of HTTP/1.1: `GET`, keep-alive, `Content-Length` framing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest request head the server reads.
const MAX_REQUEST_HEAD: usize = 64 << 10;

/// A way to misbehave, applied to the first `count` range requests for file bytes at or after
/// a given offset ([`Server::fault`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer this status (with `Retry-After: secs` when given) instead.
    Status {
        /// The status code.
        code: u16,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// Wait this long before answering.
    Stall(Duration),
    /// Send the body one byte at a time with this pause between bytes.
    Drip(Duration),
    /// Ignore `Range`: `200` with the whole file.
    IgnoreRange,
    /// `206` without `Content-Range`.
    NoContentRange,
    /// `206` with the bytes (and `Content-Range`) of the range shifted by one byte.
    ShiftedRange,
    /// Announce the right length but close after half the body.
    ShortBody,
    /// Announce and send 16 bytes more than the range.
    LongBody,
    /// A different `ETag` (the file changed).
    NewEtag,
    /// A 200 KB response header.
    HugeHeader,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// The path (and query).
    pub path: String,
    /// The `Range` header.
    pub range: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

/// What a path serves.
#[derive(Clone, Debug)]
enum Body {
    File(PathBuf),
    Bytes(Arc<Vec<u8>>),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::File(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Body::Bytes(b) => b.len() as u64,
        }
    }
}

/// A repository the server pretends to host.
#[derive(Clone, Debug)]
struct Repo {
    commit: String,
    files: Vec<(String, Body)>,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Body>,
    repos: HashMap<String, Repo>,
    /// Redirect `resolve` requests to this base URL (`{base}/{repo}/{file}`).
    cdn: Option<String>,
    /// The fault, the first byte it applies from, how many more requests get it.
    fault: Option<(Fault, u64, usize)>,
    latency: Duration,
    /// Bytes per second over all connections, 0 for no cap.
    rate: u64,
    requests: Vec<Request>,
}

/// The running server; stops when dropped.
pub struct Server {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    served: Arc<AtomicUsize>,
    pacer: Arc<Mutex<Instant>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Start a server on an ephemeral port of 127.0.0.1.
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let server = Server {
            addr,
            state: Arc::new(Mutex::new(State::default())),
            served: Arc::new(AtomicUsize::new(0)),
            pacer: Arc::new(Mutex::new(Instant::now())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (state, served, pacer, stop) = (
            server.state.clone(),
            server.served.clone(),
            server.pacer.clone(),
            server.stop.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (state, served, pacer) = (state.clone(), served.clone(), pacer.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &state, &served, &pacer);
                });
            }
        });
        server
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("server state"))
    }

    /// Serve the file at `disk` under `path` (which starts with `/`).
    pub fn file(&self, path: &str, disk: impl Into<PathBuf>) {
        let body = Body::File(disk.into());
        self.with(|s| s.files.insert(path.to_owned(), body));
    }

    /// Serve `bytes` under `path`.
    pub fn bytes(&self, path: &str, bytes: Vec<u8>) {
        let body = Body::Bytes(Arc::new(bytes));
        self.with(|s| s.files.insert(path.to_owned(), body));
    }

    /// Host repository `repo` (`ORG/NAME`) at commit `commit` (40 hex digits) with `files`
    /// (`(name in the repository, file on disk)`); `main` resolves to that commit.
    pub fn repo(&self, repo: &str, commit: &str, files: &[(&str, PathBuf)]) {
        let files = files
            .iter()
            .map(|(n, p)| ((*n).to_owned(), Body::File(p.clone())))
            .collect();
        let r = Repo {
            commit: commit.to_owned(),
            files,
        };
        self.with(|s| s.repos.insert(repo.to_owned(), r));
    }

    /// Add a file given as bytes to hosted repository `repo`.
    pub fn repo_bytes(&self, repo: &str, name: &str, bytes: Vec<u8>) {
        self.with(|s| {
            if let Some(r) = s.repos.get_mut(repo) {
                r.files
                    .push((name.to_owned(), Body::Bytes(Arc::new(bytes))));
            }
        });
    }

    /// Answer `resolve` requests with a 302 to `{cdn}/{ORG}/{NAME}/{FILE}`, which `cdn` (another
    /// server, a different origin) must serve.
    pub fn redirect_to(&self, cdn: &str) {
        self.with(|s| s.cdn = Some(cdn.to_owned()));
    }

    /// Misbehave with `fault` on the next `count` range requests that start at byte `from` or
    /// later (`from = 1` spares only a file's first read).
    pub fn fault(&self, fault: Fault, from: u64, count: usize) {
        self.with(|s| s.fault = Some((fault, from, count)));
    }

    /// Wait `latency` before every response.
    pub fn latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }

    /// Cap the body bytes sent, over all connections, at `bytes_per_sec` (0: no cap).
    pub fn rate(&self, bytes_per_sec: u64) {
        self.with(|s| s.rate = bytes_per_sec);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.with(|s| s.requests.clone())
    }

    /// Body bytes sent so far.
    pub fn bytes_served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Parse `bytes=A-B` or `bytes=A-` against a file of `len` bytes.
fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let (a, b) = v.trim().strip_prefix("bytes=")?.split_once('-')?;
    let start: u64 = a.parse().ok()?;
    let end = if b.is_empty() {
        len
    } else {
        (b.parse::<u64>().ok()? + 1).min(len)
    };
    (start < end).then_some((start, end))
}

fn serve(
    conn: TcpStream,
    state: &Mutex<State>,
    served: &AtomicUsize,
    pacer: &Mutex<Instant>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        // The request head.
        let mut lines = Vec::new();
        let mut size = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            size += line.len();
            if size > MAX_REQUEST_HEAD {
                return Ok(());
            }
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                break;
            }
            lines.push(line);
        }
        let Some(first) = lines.first() else {
            return Ok(());
        };
        let path = first.split(' ').nth(1).unwrap_or("/").to_owned();
        let header = |name: &str| {
            lines[1..].iter().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let req = Request {
            path: path.clone(),
            range: header("Range"),
            authorization: header("Authorization"),
        };
        let (latency, rate) = {
            let mut s = state.lock().expect("server state");
            s.requests.push(req.clone());
            (s.latency, s.rate)
        };
        std::thread::sleep(latency);
        if !respond(&mut out, &req, state, served, pacer, rate)? {
            return Ok(());
        }
    }
}

/// What a path resolves to.
enum Target {
    Body(Body, Vec<(String, String)>),
    Json(String),
    /// A 302 to this URL, stating the commit as the hub does.
    Redirect(String, String),
    Missing,
}

fn route(path: &str, s: &State) -> Target {
    if let Some(b) = s.files.get(path) {
        return Target::Body(b.clone(), vec![("ETag".into(), etag(b))]);
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // /api/models/ORG/NAME/revision/REV
    if parts.len() == 6 && parts[0] == "api" && parts[1] == "models" && parts[4] == "revision" {
        let repo = format!("{}/{}", parts[2], parts[3]);
        return match s.repos.get(&repo) {
            Some(r) if parts[5] == "main" || parts[5] == r.commit => {
                let siblings: Vec<String> = r
                    .files
                    .iter()
                    .map(|(n, _)| format!("{{\"rfilename\":\"{n}\"}}"))
                    .collect();
                Target::Json(format!(
                    "{{\"id\":\"{repo}\",\"sha\":\"{}\",\"siblings\":[{}]}}",
                    r.commit,
                    siblings.join(",")
                ))
            }
            _ => Target::Missing,
        };
    }
    // /ORG/NAME/resolve/REV/FILE...
    if parts.len() >= 5 && parts[2] == "resolve" {
        let repo = format!("{}/{}", parts[0], parts[1]);
        let file = parts[4..].join("/");
        let Some(r) = s.repos.get(&repo) else {
            return Target::Missing;
        };
        if parts[3] != "main" && parts[3] != r.commit {
            return Target::Missing;
        }
        let Some((_, body)) = r.files.iter().find(|(n, _)| *n == file) else {
            return Target::Missing;
        };
        if let Some(cdn) = &s.cdn {
            return Target::Redirect(format!("{cdn}/{repo}/{file}"), r.commit.clone());
        }
        return Target::Body(
            body.clone(),
            vec![
                ("ETag".into(), etag(body)),
                ("X-Repo-Commit".into(), r.commit.clone()),
            ],
        );
    }
    Target::Missing
}

/// A stable ETag: the body's length (enough to tell files apart in tests).
fn etag(b: &Body) -> String {
    format!("\"len-{}\"", b.len())
}

/// Answer one request; `false` when the connection must close.
fn respond(
    out: &mut TcpStream,
    req: &Request,
    state: &Mutex<State>,
    served: &AtomicUsize,
    pacer: &Mutex<Instant>,
    rate: u64,
) -> std::io::Result<bool> {
    let (target, fault) = {
        let mut s = state.lock().expect("server state");
        let target = route(&req.path, &s);
        let mut fault = None;
        let first = req.range.as_deref().and_then(|r| {
            r.strip_prefix("bytes=")?
                .split('-')
                .next()?
                .parse::<u64>()
                .ok()
        });
        if let (Target::Body(..), Some(first), Some((f, from, count))) =
            (&target, first, &mut s.fault)
        {
            if first >= *from && *count > 0 {
                *count -= 1;
                fault = Some(f.clone());
            }
        }
        (target, fault)
    };
    let (body, mut headers) = match target {
        Target::Missing => {
            write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            return Ok(true);
        }
        Target::Redirect(to, commit) => {
            write!(
                out,
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nX-Repo-Commit: {commit}\r\nContent-Length: 0\r\n\r\n"
            )?;
            return Ok(true);
        }
        Target::Json(j) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{j}",
                j.len()
            )?;
            return Ok(true);
        }
        Target::Body(b, h) => (b, h),
    };
    let len = body.len();
    match &fault {
        Some(Fault::Status { code, retry_after }) => {
            let ra = retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            write!(
                out,
                "HTTP/1.1 {code} Fault\r\n{ra}Content-Length: 0\r\n\r\n"
            )?;
            return Ok(true);
        }
        Some(Fault::Stall(d)) => std::thread::sleep(*d),
        Some(Fault::NewEtag) => {
            for h in &mut headers {
                if h.0 == "ETag" {
                    h.1 = "\"changed\"".into();
                }
            }
        }
        Some(Fault::HugeHeader) => headers.push(("X-Huge".into(), "x".repeat(200 << 10))),
        _ => {}
    }
    let range = req.range.as_deref().and_then(|r| parse_range(r, len));
    let (status, mut start, mut end) = match (range, &fault) {
        (_, Some(Fault::IgnoreRange)) | (None, _) => ("200 OK", 0, len),
        (Some((a, b)), _) => ("206 Partial Content", a, b),
    };
    if fault == Some(Fault::ShiftedRange) && end < len {
        start += 1;
        end += 1;
    }
    let mut head = format!("HTTP/1.1 {status}\r\nAccept-Ranges: bytes\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if status.starts_with("206") && fault != Some(Fault::NoContentRange) {
        head.push_str(&format!(
            "Content-Range: bytes {start}-{}/{len}\r\n",
            end - 1
        ));
    }
    let extra = if fault == Some(Fault::LongBody) {
        16
    } else {
        0
    };
    head.push_str(&format!("Content-Length: {}\r\n\r\n", end - start + extra));
    out.write_all(head.as_bytes())?;
    let send = match fault {
        Some(Fault::ShortBody) => (end - start) / 2,
        _ => end - start + extra,
    };
    let mut src: Box<dyn Read> = match &body {
        Body::File(p) => {
            let mut f = std::fs::File::open(p)?;
            f.seek(SeekFrom::Start(start))?;
            Box::new(f.chain(std::io::repeat(0)))
        }
        Body::Bytes(b) => {
            let s = (start as usize).min(b.len());
            Box::new(std::io::Cursor::new(b[s..].to_vec()).chain(std::io::repeat(0)))
        }
    };
    let chunk = if matches!(fault, Some(Fault::Drip(_))) {
        1
    } else {
        256 << 10
    };
    let mut buf = vec![0u8; chunk];
    let mut left = send;
    while left > 0 {
        let n = (left as usize).min(chunk);
        src.read_exact(&mut buf[..n])?;
        if let Some(Fault::Drip(d)) = fault {
            std::thread::sleep(d);
        }
        if rate > 0 {
            // Pace all connections together: each chunk is due when the cap allows.
            let due = {
                let mut next = pacer.lock().expect("pacer");
                let now = Instant::now();
                if *next < now {
                    *next = now;
                }
                *next += Duration::from_secs_f64(n as f64 / rate as f64);
                *next
            };
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        out.write_all(&buf[..n])?;
        served.fetch_add(n, Ordering::Relaxed);
        left -= n as u64;
    }
    out.flush()?;
    // After a body that broke the framing, the connection cannot carry another response.
    Ok(!matches!(
        fault,
        Some(Fault::ShortBody | Fault::LongBody | Fault::IgnoreRange)
    ))
}
