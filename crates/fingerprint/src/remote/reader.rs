//! One weight file read over HTTP: its header fetched and validated by the local readers'
//! own code, its tensor bytes fetched in ranges, batch by batch, and decoded by the same
//! decoders as a mapped file, so the statistics come out bit for bit the same.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use url::Url;

use super::http::{Client, Expect};
use crate::config::ConfigSummary;
use crate::error::{Error, Result};
use crate::format::gguf::{self, GgufReader};
use crate::format::safetensors::{self as st, SafetensorsReader};
use crate::format::{Format, TensorInfo, TensorReader, Values};

/// Bytes asked for by a file's first request: the whole header of most safetensors files
/// and the start of a GGUF header (whose vocabulary alone can take megabytes).
pub const FIRST_READ: u64 = 1 << 20;
/// Largest GGUF header fetched while growing the prefix until it parses. The biggest real
/// headers (vocabularies of a few hundred thousand tokens with merges, chat templates) are
/// tens of MB; the GGUF reader's own caps would allow more, which is no reason to fetch it.
pub const MAX_GGUF_HEADER: u64 = 256 << 20;

/// A remote weight file: where it is and what is known of it after its header was read.
#[derive(Debug)]
pub struct RemoteFile {
    /// The URL as asked for (hub `resolve` URL or the user's), for messages and provenance.
    pub url: Url,
    /// The name relative to the model (shard or file name).
    pub name: String,
    /// The URL that served the header (after redirects): ranges go straight there.
    target: Url,
    /// Container format.
    pub format: Format,
    /// Size in bytes (from `Content-Range`).
    pub size: u64,
    /// `ETag`, pinned for every later range.
    pub etag: Option<String>,
    /// `X-Repo-Commit` of the header's response.
    pub commit: Option<String>,
    /// The first bytes of the file, holding the whole header.
    head: Vec<u8>,
    /// Bytes of `head` that are the header.
    pub header_len: u64,
    /// Every byte range read, in the order read.
    ranges: Mutex<Vec<Range<u64>>>,
}

impl RemoteFile {
    /// Fetch and validate the header of the file at `url`.
    pub fn open(client: &Client, url: Url, name: String) -> Result<RemoteFile> {
        let display = url.to_string();
        let first = client.get_range(
            &url,
            &display,
            0..FIRST_READ,
            &Expect::default(),
            "the header",
        )?;
        let mut file = RemoteFile {
            name,
            target: first.target,
            format: Format::Safetensors,
            size: first.size,
            etag: first.etag,
            commit: first.commit,
            head: first.bytes,
            header_len: 0,
            ranges: Mutex::new(Vec::new()),
            url,
        };
        file.record(0..file.head.len() as u64);
        let path = file.path();
        if file.head.starts_with(gguf::MAGIC) {
            file.format = Format::Gguf;
            loop {
                match GgufReader::from_head(&path, file.head.clone(), file.size) {
                    Ok(r) => {
                        file.header_len = r.data_offset().min(file.head.len() as u64);
                        break;
                    }
                    Err(Error::Truncated { needed, actual, .. })
                        if actual == file.head.len() as u64 && actual < file.size =>
                    {
                        let next = needed.max(actual * 2).min(file.size);
                        if next > MAX_GGUF_HEADER {
                            return Err(Error::Http {
                                url: display,
                                reason: format!(
                                    "the GGUF header needs more than {MAX_GGUF_HEADER} bytes (the cap)"
                                ),
                            });
                        }
                        file.extend_head(client, next)?;
                    }
                    Err(e) => return Err(e),
                }
            }
        } else if file.url.path().ends_with(".safetensors") || file.head.get(8) == Some(&b'{') {
            let n = st::header_len(&file.head).ok_or_else(|| Error::Truncated {
                path: path.clone(),
                what: "the 8-byte header length".into(),
                needed: 8,
                actual: file.size,
            })?;
            let need = n.saturating_add(8);
            if need <= st::MAX_HEADER_BYTES + 8 && need <= file.size {
                file.extend_head(client, need)?;
            }
            SafetensorsReader::from_head(&path, file.head.clone(), file.size)?;
            file.header_len = need;
        } else {
            return Err(Error::UnknownFormat {
                path,
                reason: format!(
                    "only safetensors and GGUF files, whose headers give every tensor's offset, \
                     are read over the network (first bytes {:02x?})",
                    &file.head[..file.head.len().min(8)]
                ),
            });
        }
        Ok(file)
    }

    /// The URL as a path, for the readers' messages.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(self.url.as_str())
    }

    /// Grow the held prefix to `len` bytes.
    fn extend_head(&mut self, client: &Client, len: u64) -> Result<()> {
        let have = self.head.len() as u64;
        if len <= have {
            return Ok(());
        }
        let more = self.fetch(client, have..len, "the header")?;
        self.head.extend_from_slice(&more);
        Ok(())
    }

    /// Bytes `range` of the file, checked against its size and ETag.
    pub fn fetch(&self, client: &Client, range: Range<u64>, what: &str) -> Result<Vec<u8>> {
        let expect = Expect {
            size: Some(self.size),
            etag: self.etag.clone(),
        };
        let got = client.get_range(
            &self.target,
            self.url.as_str(),
            range.clone(),
            &expect,
            what,
        )?;
        self.record(range);
        Ok(got.bytes)
    }

    fn record(&self, range: Range<u64>) {
        if let Ok(mut r) = self.ranges.lock() {
            r.push(range);
        }
    }

    /// The header bytes.
    pub fn header(&self) -> &[u8] {
        &self.head[..self.header_len as usize]
    }

    /// The ranges read so far, sorted and merged.
    pub fn ranges_read(&self) -> Vec<Range<u64>> {
        let mut r = self.ranges.lock().map(|r| r.clone()).unwrap_or_default();
        r.sort_by_key(|r| (r.start, r.end));
        let mut out: Vec<Range<u64>> = Vec::with_capacity(r.len());
        for x in r {
            match out.last_mut() {
                Some(last) if x.start <= last.end => last.end = last.end.max(x.end),
                _ => out.push(x),
            }
        }
        out
    }

    /// A header-only reader of the file (tensor list, metadata, configuration).
    fn header_reader(&self) -> Result<Inner> {
        let path = self.path();
        Ok(match self.format {
            Format::Gguf => {
                Inner::Gguf(GgufReader::from_head(&path, self.head.clone(), self.size)?)
            }
            _ => Inner::Safetensors(SafetensorsReader::from_head(
                &path,
                self.head.clone(),
                self.size,
            )?),
        })
    }
}

/// The header-only local reader of a remote file.
enum Inner {
    Safetensors(SafetensorsReader),
    Gguf(GgufReader),
}

impl Inner {
    fn reader(&self) -> &dyn TensorReader {
        match self {
            Inner::Safetensors(r) => r,
            Inner::Gguf(r) => r,
        }
    }
}

/// A fetched run of bytes and the reads it serves: `(tensor, first element) -> offset range
/// into the run`.
type Fetched = HashMap<(usize, u64, u64), (Arc<Vec<u8>>, Range<usize>)>;

/// A [`TensorReader`] over a [`RemoteFile`].
pub struct RemoteReader {
    client: Arc<Client>,
    file: Arc<RemoteFile>,
    inner: Inner,
    /// The current batch's bytes ([`TensorReader::prefetch`]); dropped before the next.
    batch: Mutex<Fetched>,
    /// The reads the engine announced ([`TensorReader::batches`]) and their batches.
    plan: Mutex<Batches>,
    /// The next batch, being fetched in the background: its first read and the fetch.
    ahead: Mutex<Option<(usize, Ahead)>>,
}

/// Reads and the batches they were cut into.
type Batches = (Vec<(usize, Range<u64>)>, Vec<Range<usize>>);
/// A batch being fetched in the background.
type Ahead = std::thread::JoinHandle<Result<Fetched>>;

impl RemoteReader {
    /// A reader of `file` through `client`.
    pub fn new(client: Arc<Client>, file: Arc<RemoteFile>) -> Result<RemoteReader> {
        let inner = file.header_reader()?;
        Ok(RemoteReader {
            client,
            file,
            inner,
            batch: Mutex::new(HashMap::new()),
            plan: Mutex::new((Vec::new(), Vec::new())),
            ahead: Mutex::new(None),
        })
    }

    /// Absolute bytes of elements `range` of tensor `index`; errors as the local readers'.
    fn span(&self, index: usize, range: &Range<u64>) -> Result<Range<u64>> {
        let path = self.file.path();
        let t =
            self.inner.reader().tensors().get(index).ok_or_else(|| {
                Error::header(&path, format!("tensor index {index} out of range"))
            })?;
        let bad =
            |why: &str| Error::tensor(&path, &t.name, format!("element range {range:?} {why}"));
        if range.start > range.end || range.end > t.numel() {
            return Err(bad("is out of bounds"));
        }
        match &self.inner {
            Inner::Safetensors(r) => {
                let size = st::element_size(&t.dtype).ok_or_else(|| unsupported(&path, t))?;
                let base = r
                    .tensor_bytes(index)
                    .ok_or_else(|| bad("has no data"))?
                    .start;
                Ok(base + range.start * size as u64..base + range.end * size as u64)
            }
            Inner::Gguf(r) => {
                let ty = r.ggml_type(index).ok_or_else(|| bad("has no type"))?;
                if ty.kernel.is_none() {
                    return Err(Error::UnsupportedDtype {
                        path,
                        tensor: t.name.clone(),
                        dtype: ty.name.to_owned(),
                    });
                }
                if range.start % ty.block != 0 || range.end % ty.block != 0 {
                    return Err(bad(&format!("is not aligned to blocks of {}", ty.block)));
                }
                let base = r
                    .tensor_bytes(index)
                    .ok_or_else(|| bad("has no data"))?
                    .start;
                Ok(base + range.start / ty.block * ty.type_size
                    ..base + range.end / ty.block * ty.type_size)
            }
        }
    }

    fn decode(&self, index: usize, bytes: &[u8], sink: &mut dyn FnMut(Values<'_>)) {
        match &self.inner {
            Inner::Safetensors(r) => st::decode(&r.tensors()[index].dtype, bytes, sink),
            Inner::Gguf(r) => {
                if let Some(ty) = r.ggml_type(index) {
                    gguf::decode(ty, bytes, sink)
                }
            }
        }
    }

    /// The [`Job`]s of `reads`.
    fn jobs(&self, reads: &[(usize, Range<u64>)]) -> Result<Vec<Job>> {
        reads
            .iter()
            .map(|(index, range)| {
                Ok(Job {
                    key: (*index, range.start, range.end),
                    span: self.span(*index, range)?,
                    what: format!("tensor {}", self.tensor_name(*index)),
                })
            })
            .collect()
    }

    fn tensor_name(&self, index: usize) -> String {
        self.inner
            .reader()
            .tensors()
            .get(index)
            .map_or_else(|| format!("#{index}"), |t| t.name.clone())
    }
}

fn unsupported(path: &Path, t: &TensorInfo) -> Error {
    Error::UnsupportedDtype {
        path: path.to_path_buf(),
        tensor: t.name.clone(),
        dtype: t.dtype.to_string(),
    }
}

/// One range request of a batch: the bytes and the reads (index into the batch) they serve.
struct Segment {
    bytes: Range<u64>,
    reads: Vec<usize>,
}

impl TensorReader for RemoteReader {
    fn path(&self) -> &Path {
        self.inner.reader().path()
    }

    fn tensors(&self) -> &[TensorInfo] {
        self.inner.reader().tensors()
    }

    fn read(
        &self,
        index: usize,
        range: Range<u64>,
        sink: &mut dyn FnMut(Values<'_>),
    ) -> Result<()> {
        let span = self.span(index, &range)?;
        if span.is_empty() {
            return Ok(());
        }
        let held = self
            .batch
            .lock()
            .ok()
            .and_then(|b| b.get(&(index, range.start, range.end)).cloned());
        match held {
            Some((run, at)) => self.decode(index, &run[at], sink),
            None => {
                let what = format!("tensor {}", self.tensor_name(index));
                let bytes = self.file.fetch(&self.client, span, &what)?;
                self.decode(index, &bytes, sink);
            }
        }
        Ok(())
    }

    /// GGUF quantized blocks: the moments from their codes, as the local reader computes them
    /// (so remote and local fingerprints agree bit for bit).
    fn moments(&self, index: usize, range: Range<u64>) -> Option<Result<crate::Accumulator>> {
        let Inner::Gguf(r) = &self.inner else {
            return None;
        };
        let ty = r.ggml_type(index).filter(|&ty| gguf::has_moments(ty))?;
        let moments = |bytes: &[u8]| gguf::moments(ty, bytes).unwrap_or_default();
        Some((|| {
            let span = self.span(index, &range)?;
            if span.is_empty() {
                return Ok(crate::Accumulator::new());
            }
            let held = self
                .batch
                .lock()
                .ok()
                .and_then(|b| b.get(&(index, range.start, range.end)).cloned());
            Ok(match held {
                Some((run, at)) => moments(&run[at]),
                None => {
                    let what = format!("tensor {}", self.tensor_name(index));
                    moments(&self.file.fetch(&self.client, span, &what)?)
                }
            })
        })())
    }

    fn architecture(&self) -> Option<String> {
        self.inner.reader().architecture()
    }

    fn config(&self) -> Option<ConfigSummary> {
        self.inner.reader().config()
    }

    /// Consecutive batches of at most half [`super::HttpConfig::window`] bytes (at least one
    /// read), so that the batch being read and the one fetched ahead fit in the window.
    fn batches(&self, reads: &[(usize, Range<u64>)]) -> Vec<Range<usize>> {
        let window = (self.client.config().window / 2).max(1);
        let mut out = Vec::new();
        let (mut start, mut bytes) = (0, 0u64);
        for (k, (index, range)) in reads.iter().enumerate() {
            let len = self.span(*index, range).map_or(0, |s| s.end - s.start);
            if k > start && bytes + len > window {
                out.push(start..k);
                (start, bytes) = (k, 0);
            }
            bytes += len;
        }
        if start < reads.len() {
            out.push(start..reads.len());
        }
        if let Ok(mut p) = self.plan.lock() {
            *p = (reads.to_vec(), out.clone());
        }
        out
    }

    /// Fetch the batch's bytes, unless they were fetched ahead while the engine computed the
    /// previous batch; then start fetching the next batch in the background. At most two
    /// batches are held: the one being read and the one being fetched.
    fn prefetch(&self, reads: &[(usize, Range<u64>)]) -> Result<()> {
        if let Ok(mut b) = self.batch.lock() {
            b.clear();
        }
        let (plan, bounds) = match self.plan.lock() {
            Ok(p) => p.clone(),
            Err(_) => (Vec::new(), Vec::new()),
        };
        let k = bounds
            .iter()
            .position(|b| plan.get(b.clone()) == Some(reads));
        let ahead = self.ahead.lock().ok().and_then(|mut a| a.take());
        let fetched = match (k, ahead) {
            (Some(k), Some((start, handle))) if bounds[k].start == start => {
                handle.join().unwrap_or_else(|_| {
                    Err(Error::Http {
                        url: self.file.url.to_string(),
                        reason: "the fetching thread panicked".into(),
                    })
                })?
            }
            _ => fetch_batch(&self.client, &self.file, self.jobs(reads)?)?,
        };
        if let Some(next) = k.and_then(|k| bounds.get(k + 1)) {
            let jobs = self.jobs(&plan[next.clone()])?;
            let (client, file) = (self.client.clone(), self.file.clone());
            let handle = std::thread::spawn(move || fetch_batch(&client, &file, jobs));
            if let Ok(mut a) = self.ahead.lock() {
                *a = Some((next.start, handle));
            }
        }
        if let Ok(mut b) = self.batch.lock() {
            *b = fetched;
        }
        Ok(())
    }
}

/// One read of a batch: its key in [`Fetched`], its bytes in the file, what it is.
struct Job {
    key: (usize, u64, u64),
    span: Range<u64>,
    what: String,
}

/// Fetch the bytes of `jobs`: neighbouring ranges merged into requests of at most
/// `max_request` bytes (a single large read is cut into pieces of that size), `concurrency`
/// requests in flight.
fn fetch_batch(client: &Client, file: &RemoteFile, jobs: Vec<Job>) -> Result<Fetched> {
    let cfg = client.config();
    let mut segments: Vec<Segment> = Vec::new();
    for (k, j) in jobs.iter().enumerate() {
        let s = &j.span;
        if s.is_empty() {
            continue;
        }
        match segments.last_mut() {
            Some(seg)
                if s.start >= seg.bytes.end
                    && s.start - seg.bytes.end <= cfg.coalesce_gap
                    && s.end - seg.bytes.start <= cfg.max_request =>
            {
                seg.bytes.end = s.end;
                seg.reads.push(k);
            }
            _ => segments.push(Segment {
                bytes: s.clone(),
                reads: vec![k],
            }),
        }
    }
    let step = cfg.max_request.max(1);
    let pieces: Vec<(usize, Range<u64>)> = segments
        .iter()
        .enumerate()
        .flat_map(|(i, seg)| {
            (seg.bytes.start..seg.bytes.end)
                .step_by(step as usize)
                .map(move |a| (i, a..(a + step).min(seg.bytes.end)))
        })
        .collect();
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Vec<u8>>>>> =
        pieces.iter().map(|_| Mutex::new(None)).collect();
    let workers = cfg.concurrency.clamp(1, pieces.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((seg, bytes)) = pieces.get(i) else {
                    break;
                };
                let what = &jobs[segments[*seg].reads[0]].what;
                let got = file.fetch(client, bytes.clone(), what);
                let failed = got.is_err();
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(got);
                }
                if failed {
                    // Stop handing out work: the batch fails anyway.
                    next.store(pieces.len(), Ordering::Relaxed);
                    break;
                }
            });
        }
    });
    let mut runs: Vec<Vec<Vec<u8>>> = segments.iter().map(|_| Vec::new()).collect();
    for ((seg, _), result) in pieces.iter().zip(results) {
        // A piece not fetched because another failed: that error is returned.
        if let Some(r) = result.into_inner().ok().flatten() {
            runs[*seg].push(r?);
        }
    }
    let mut held = HashMap::with_capacity(jobs.len());
    for (seg, mut parts) in segments.iter().zip(runs) {
        let bytes = if parts.len() == 1 {
            Arc::new(parts.remove(0))
        } else {
            Arc::new(parts.concat())
        };
        if bytes.len() as u64 != seg.bytes.end - seg.bytes.start {
            return Err(Error::Http {
                url: file.url.to_string(),
                reason: format!(
                    "bytes {}..{} were not all fetched",
                    seg.bytes.start, seg.bytes.end
                ),
            });
        }
        for &k in &seg.reads {
            let s = &jobs[k].span;
            let at = (s.start - seg.bytes.start) as usize..(s.end - seg.bytes.start) as usize;
            held.insert(jobs[k].key, (bytes.clone(), at));
        }
    }
    Ok(held)
}
