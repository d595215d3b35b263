//! A blocking HTTP/1.1 client for ranged reads that trusts no response.
//!
//! Every range response must be `206 Partial Content` with a `Content-Range` equal to the
//! request, a `Content-Length` (when sent) equal to the range, exactly that many body bytes,
//! and the `ETag` the file had when its header was read. A server that ignores `Range` and
//! answers `200` with the whole file is refused before its body is read, so memory stays
//! bounded by the request. Redirects are followed by hand (at most [`MAX_REDIRECTS`]) so that
//! the token goes only to the origin it belongs to, never across hosts or to plain HTTP.
//! `429` (honouring a bounded `Retry-After`), `5xx`, transport errors, timeouts and short
//! bodies are retried a bounded number of times with exponential backoff. Errors name the URL
//! as asked for (which never carries the token) and, for tensor data, the tensor.

use std::io::Read;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// Most redirects followed for one request (the hub redirects once, to its CDN).
pub const MAX_REDIRECTS: u32 = 5;
/// Longest `ETag` or commit header accepted into the provenance; a hostile server cannot grow
/// a fingerprint through them.
pub const MAX_TAG_LEN: usize = 256;

/// How hard to try, how long to wait and how much to hold.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Connecting to a server.
    pub connect_timeout: Duration,
    /// Base of every request's deadline: headers and the first bytes must come within it.
    pub timeout: Duration,
    /// Slowest transfer accepted, in bytes per second: a request of `n` bytes must finish
    /// within `timeout + n / min_rate` (a server that drips bytes fails, then is retried).
    pub min_rate: u64,
    /// Retries after a 429, a 5xx, a transport error, a timeout or a short body.
    pub retries: u32,
    /// Wait before the first retry, doubled for each further one.
    pub backoff: Duration,
    /// Longest `Retry-After` honoured; a server asking for more is an error.
    pub max_retry_after: Duration,
    /// Range requests in flight at once.
    pub concurrency: usize,
    /// Most tensor bytes held in memory at once: the batch being read and the next one,
    /// fetched meanwhile, each at most half of it.
    pub window: u64,
    /// Largest single range request.
    pub max_request: u64,
    /// Gaps between wanted ranges up to this many bytes are read through rather than paying
    /// another request (a norm vector between two projections).
    pub coalesce_gap: u64,
}

impl Default for HttpConfig {
    /// Defaults for the public internet: 8 requests of at most 16 MiB in flight, 128 MiB held
    /// (batches of 64 MiB, so a 50 ms round trip costs little against a 200 MB/s link), 4
    /// retries from 0.5 s.
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(15),
            timeout: Duration::from_secs(30),
            min_rate: 256 << 10,
            retries: 4,
            backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(60),
            concurrency: 8,
            window: 128 << 20,
            max_request: 16 << 20,
            coalesce_gap: 256 << 10,
        }
    }
}

/// A bearer token. Its `Debug` form is redacted, and no error or provenance holds it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// A token from its text (surrounding whitespace dropped); `None` when empty.
    pub fn new(text: &str) -> Option<Token> {
        let t = text.trim();
        (!t.is_empty()).then(|| Token(t.to_owned()))
    }

    /// The Hugging Face token the hub's own tools would use: `HF_TOKEN`, else the file
    /// `HF_TOKEN_PATH`, else `$HF_HOME/token`, else `~/.cache/huggingface/token`.
    pub fn from_env() -> Option<Token> {
        if let Some(t) = std::env::var("HF_TOKEN").ok().and_then(|t| Token::new(&t)) {
            return Some(t);
        }
        let path = if let Some(p) = std::env::var_os("HF_TOKEN_PATH").filter(|p| !p.is_empty()) {
            PathBuf::from(p)
        } else if let Some(h) = std::env::var_os("HF_HOME").filter(|p| !p.is_empty()) {
            PathBuf::from(h).join("token")
        } else {
            PathBuf::from(std::env::var_os("HOME")?)
                .join(".cache")
                .join("huggingface")
                .join("token")
        };
        // A token file is a few dozen bytes; read at most 4 KiB of whatever is there.
        let mut text = String::new();
        std::fs::File::open(path)
            .ok()?
            .take(4096)
            .read_to_string(&mut text)
            .ok()?;
        Token::new(&text)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The Hugging Face endpoint: `HF_ENDPOINT`, else `https://huggingface.co`.
pub fn hf_endpoint() -> Result<Url> {
    let raw = std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into());
    let trimmed = raw.trim().trim_end_matches('/');
    Url::parse(&format!("{trimmed}/")).map_err(|e| Error::Http {
        url: trimmed.to_owned(),
        reason: format!("HF_ENDPOINT is not a URL: {e}"),
    })
}

/// What a range request must match.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// The file's size, when known (every `Content-Range` must state it).
    pub size: Option<u64>,
    /// The file's `ETag`, when known (every response must carry it).
    pub etag: Option<String>,
}

/// The bytes of a range, and what the server said about the file.
#[derive(Debug)]
pub struct Ranged {
    /// The bytes (exactly the range, or up to the end of the file for a first read).
    pub bytes: Vec<u8>,
    /// The file's size from `Content-Range`.
    pub size: u64,
    /// `ETag`, if sent.
    pub etag: Option<String>,
    /// `X-Repo-Commit`, if sent.
    pub commit: Option<String>,
    /// The URL that answered (after redirects): later ranges go straight there.
    pub target: Url,
}

/// A whole small body.
#[derive(Debug)]
pub struct Whole {
    /// The body.
    pub bytes: Vec<u8>,
    /// `X-Repo-Commit`, if sent.
    pub commit: Option<String>,
}

/// Why one attempt failed: worth another try, or final.
enum Failure {
    Retry(String),
    Fatal(String),
}

/// The client: one connection pool, the retry policy, the hub endpoint and its token.
pub struct Client {
    agent: ureq::Agent,
    config: HttpConfig,
    endpoint: Url,
    auth: Option<(url::Origin, Token)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("endpoint", &self.endpoint.as_str())
            .field("token", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for the hub at `endpoint` (`hf://` names resolve there) that sends `token`
    /// only to the endpoint's origin (scheme, host and port).
    pub fn new(config: HttpConfig, endpoint: Url, token: Option<Token>) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .redirects(0)
            .max_idle_connections_per_host(config.concurrency.max(1) * 2)
            .user_agent(concat!("nullprint/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent,
            config,
            auth: token.map(|t| (endpoint.origin(), t)),
            endpoint,
        }
    }

    /// A client for the hub endpoint [`hf_endpoint`] with the token [`Token::from_env`].
    pub fn from_env(config: HttpConfig) -> Result<Client> {
        Ok(Client::new(config, hf_endpoint()?, Token::from_env()))
    }

    /// The hub endpoint (ends with `/`).
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The policy in force.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Whether a request to `url` carries the token.
    fn token_for(&self, url: &Url) -> Option<&Token> {
        let (origin, token) = self.auth.as_ref()?;
        (url.origin() == *origin).then_some(token)
    }

    /// Sleep before retry `attempt` (0-based): the server's `Retry-After` when it gave one
    /// (bounded), else the backoff doubled per attempt.
    fn pause(&self, attempt: u32, retry_after: Option<Duration>) {
        let backoff = self.config.backoff * 2u32.saturating_pow(attempt.min(16));
        std::thread::sleep(retry_after.unwrap_or(backoff));
    }

    /// One GET of `start`, following redirects and retrying what may succeed later. Returns
    /// the final response (any status but 3xx, 429 and 5xx), the URL that gave it, and the
    /// first `X-Repo-Commit` of the chain (the hub states it on its redirect to the CDN).
    fn send(
        &self,
        start: &Url,
        range: Option<&Range<u64>>,
        timeout: Duration,
    ) -> Result<(ureq::Response, Url, Option<String>)> {
        let fail = |reason: String| Error::Http {
            url: start.to_string(),
            reason,
        };
        let mut url = start.clone();
        let mut commit = None;
        let mut redirects = 0;
        let mut attempt = 0;
        loop {
            let mut req = self.agent.request_url("GET", &url).timeout(timeout);
            if let Some(r) = range {
                req = req.set("Range", &format!("bytes={}-{}", r.start, r.end - 1));
            }
            if let Some(t) = self.token_for(&url) {
                req = req.set("Authorization", &format!("Bearer {}", t.0));
            }
            let resp = match req.call() {
                Ok(r) | Err(ureq::Error::Status(_, r)) => r,
                Err(ureq::Error::Transport(t)) => {
                    let mut what = t.kind().to_string();
                    if let Some(m) = t.message() {
                        what = format!("{what}: {m}");
                    }
                    if let Some(src) = std::error::Error::source(&t) {
                        what = format!("{what}: {src}");
                    }
                    if attempt < self.config.retries {
                        self.pause(attempt, None);
                        attempt += 1;
                        continue;
                    }
                    return Err(fail(format!("{what} (after {attempt} retries)")));
                }
            };
            let status = resp.status();
            commit = commit.or_else(|| tag(&resp, "X-Repo-Commit"));
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(fail(format!("more than {MAX_REDIRECTS} redirects")));
                }
                let loc = resp
                    .header("Location")
                    .ok_or_else(|| fail(format!("HTTP {status} redirect without a Location")))?;
                let next = url
                    .join(loc)
                    .map_err(|e| fail(format!("redirect to an invalid URL: {e}")))?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(fail(format!(
                        "redirect to unsupported scheme {}",
                        next.scheme()
                    )));
                }
                url = next;
                continue;
            }
            if status == 429 || (500..600).contains(&status) {
                let after = retry_after(&resp);
                if let Some(a) = after {
                    if a > self.config.max_retry_after {
                        return Err(fail(format!(
                            "HTTP {status}: the server asks to retry after {} s, over the {} s cap",
                            a.as_secs(),
                            self.config.max_retry_after.as_secs()
                        )));
                    }
                }
                if attempt < self.config.retries {
                    self.pause(attempt, after);
                    attempt += 1;
                    continue;
                }
                return Err(fail(format!(
                    "HTTP {status}{} (after {attempt} retries)",
                    server_message(&resp, self)
                )));
            }
            return Ok((resp, url, commit));
        }
    }

    /// GET a whole small file (a model-info listing, `config.json`, a shard index) of at most
    /// `cap` bytes. `Ok(None)` when the server says it does not exist (404).
    pub fn get_whole(&self, url: &Url, cap: u64) -> Result<Option<Whole>> {
        let fail = |reason: String| Error::Http {
            url: url.to_string(),
            reason,
        };
        let timeout = self.config.timeout + Duration::from_secs(cap / self.config.min_rate.max(1));
        let (resp, _, commit) = self.send(url, None, timeout)?;
        match resp.status() {
            200 => {}
            404 => return Ok(None),
            s => return Err(fail(format!("HTTP {s}{}", server_message(&resp, self)))),
        }
        if let Some(n) = content_length(&resp) {
            if n > cap {
                return Err(fail(format!("{n} bytes, over the {cap}-byte cap")));
            }
        }
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("reading the body: {e}")))?;
        if bytes.len() as u64 > cap {
            return Err(fail(format!("body over the {cap}-byte cap")));
        }
        Ok(Some(Whole { bytes, commit }))
    }

    /// GET bytes `range` of the file at `url`, checked against `expect`; `what` says what the
    /// bytes are for the error messages ("tensor X", "the header"). When `expect.size` is
    /// unknown (a file's first read) the server may end the range early at the end of the
    /// file.
    pub fn get_range(
        &self,
        url: &Url,
        display: &str,
        range: Range<u64>,
        expect: &Expect,
        what: &str,
    ) -> Result<Ranged> {
        let mut attempt = 0;
        loop {
            match self.try_range(url, &range, expect) {
                Ok(r) => return Ok(r),
                Err(Failure::Retry(reason)) if attempt < self.config.retries => {
                    let _ = reason;
                    self.pause(attempt, None);
                    attempt += 1;
                }
                Err(Failure::Retry(reason)) => {
                    return Err(Error::Http {
                        url: display.to_owned(),
                        reason: format!(
                            "{what}: bytes {}..{}: {reason} (after {attempt} retries)",
                            range.start, range.end
                        ),
                    })
                }
                Err(Failure::Fatal(reason)) => {
                    return Err(Error::Http {
                        url: display.to_owned(),
                        reason: format!("{what}: bytes {}..{}: {reason}", range.start, range.end),
                    })
                }
            }
        }
    }

    fn try_range(
        &self,
        url: &Url,
        range: &Range<u64>,
        expect: &Expect,
    ) -> std::result::Result<Ranged, Failure> {
        let want = range.end - range.start;
        let timeout = self.config.timeout + Duration::from_secs(want / self.config.min_rate.max(1));
        let (resp, target, commit) = self
            .send(url, Some(range), timeout)
            .map_err(|e| Failure::Fatal(strip_url(e)))?;
        match resp.status() {
            206 => {}
            200 => {
                return Err(Failure::Fatal(format!(
                    "the server ignored the Range header and sent the whole file ({}); \
                     nullprint reads only the ranges it needs and will not download it whole",
                    content_length(&resp)
                        .map(|n| format!("{n} bytes"))
                        .unwrap_or_else(|| "length not given".into())
                )))
            }
            416 => {
                return Err(Failure::Fatal(
                    "HTTP 416: the range lies past the end of the file".into(),
                ))
            }
            s => {
                return Err(Failure::Fatal(format!(
                    "HTTP {s}{}",
                    server_message(&resp, self)
                )))
            }
        }
        let cr = resp
            .header("Content-Range")
            .ok_or_else(|| Failure::Fatal("206 response without a Content-Range header".into()))?;
        let (start, end, total) = parse_content_range(cr)
            .ok_or_else(|| Failure::Fatal(format!("malformed Content-Range {:?}", clip(cr))))?;
        if let Some(size) = expect.size {
            if total != size {
                return Err(Failure::Fatal(format!(
                    "Content-Range {:?} gives the file {total} bytes, but it had {size}: the file changed",
                    clip(cr)
                )));
            }
        }
        // Exactly the range asked for; only a first read may stop at the end of the file.
        let short_ok = expect.size.is_none() && end == total && end < range.end;
        if start != range.start || (end != range.end && !short_ok) {
            return Err(Failure::Fatal(format!(
                "Content-Range {:?} does not match the request for bytes {}..{}",
                clip(cr),
                range.start,
                range.end
            )));
        }
        let len = end - start;
        if let Some(n) = content_length(&resp) {
            if n != len {
                return Err(Failure::Fatal(format!(
                    "Content-Length {n} does not match the {len}-byte Content-Range"
                )));
            }
        }
        let etag = tag(&resp, "ETag");
        if let Some(pinned) = &expect.etag {
            if etag.as_ref() != Some(pinned) {
                return Err(Failure::Fatal(format!(
                    "the file changed between requests: ETag {pinned} when its header was read, now {}",
                    etag.as_deref().unwrap_or("none")
                )));
            }
        }
        let mut bytes = Vec::with_capacity(len as usize);
        let got = resp
            .into_reader()
            .take(len + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::Retry(format!("reading the body: {e}")));
        got?;
        if (bytes.len() as u64) < len {
            return Err(Failure::Retry(format!(
                "the body ended after {} of {len} bytes",
                bytes.len()
            )));
        }
        if bytes.len() as u64 > len {
            return Err(Failure::Fatal(format!(
                "the body is longer than the {len} bytes of its Content-Range"
            )));
        }
        Ok(Ranged {
            bytes,
            size: total,
            etag,
            commit,
            target,
        })
    }
}

/// The reason of an [`Error::Http`] (its URL is named by the caller).
fn strip_url(e: Error) -> String {
    match e {
        Error::Http { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// `Content-Length`, when sent and a number.
fn content_length(resp: &ureq::Response) -> Option<u64> {
    resp.header("Content-Length")?.trim().parse().ok()
}

/// A header meant for the provenance, if present and of sane length.
fn tag(resp: &ureq::Response, name: &str) -> Option<String> {
    resp.header(name)
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= MAX_TAG_LEN)
        .map(str::to_owned)
}

/// At most 80 characters of a header value, for an error message.
fn clip(v: &str) -> String {
    v.chars().take(80).collect()
}

/// The hub's explanation (`X-Error-Message`), clipped, with the token scrubbed should a
/// server echo it.
fn server_message(resp: &ureq::Response, client: &Client) -> String {
    let Some(m) = resp.header("X-Error-Message") else {
        return String::new();
    };
    let mut m = clip(m);
    if let Some((_, t)) = &client.auth {
        m = m.replace(&t.0, "<redacted>");
    }
    format!(": {m}")
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured: the backoff applies).
fn retry_after(resp: &ureq::Response) -> Option<Duration> {
    let secs: u64 = resp.header("Retry-After")?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// `bytes START-LAST/TOTAL` as `(start, end, total)` with `end = LAST + 1`, checked.
pub fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (start, last, total) = (num(a)?, num(b)?, num(total)?);
    let end = last.checked_add(1)?;
    (start < end && end <= total).then_some((start, end, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-7/100"), Some((0, 8, 100)));
        assert_eq!(parse_content_range("bytes 90-99/100"), Some((90, 100, 100)));
        assert_eq!(parse_content_range("bytes 90-100/100"), None);
        assert_eq!(parse_content_range("bytes 5-4/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("bytes 0-7/*"), None);
        assert_eq!(parse_content_range("bytes +0-7/100"), None);
        assert_eq!(parse_content_range("items 0-7/100"), None);
    }

    #[test]
    fn token_is_redacted_and_origin_bound() {
        let t = Token::new(" hf_secret \n").unwrap();
        assert!(!format!("{t:?}").contains("hf_secret"));
        assert!(Token::new("  ").is_none());
        let hub = Url::parse("https://hub.example:8443/").unwrap();
        let c = Client::new(HttpConfig::default(), hub, Some(t));
        assert!(!format!("{c:?}").contains("hf_secret"));
        let yes = Url::parse("https://hub.example:8443/a/b").unwrap();
        assert!(c.token_for(&yes).is_some());
        for no in [
            "http://hub.example:8443/a",
            "https://hub.example/a",
            "https://cdn.example:8443/a",
        ] {
            assert!(c.token_for(&Url::parse(no).unwrap()).is_none(), "{no}");
        }
    }
}
