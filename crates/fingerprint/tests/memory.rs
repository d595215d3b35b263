//! Memory stays bounded whatever the model size: fingerprinting a generated 1.4 GB sharded
//! checkpoint (bf16 and f32 shards, tensors of up to 600 MB) must not grow the process's
//! anonymous memory by 256 MB, and must never hold two shards mapped at once.
//!
//! Anonymous memory is measured two ways, because VmHWM also counts the file-backed pages of
//! the memory-mapped weights: a counting global allocator (exact peak of live heap bytes) and
//! a thread sampling `RssAnon` (heap, stacks and any other anonymous mapping) and the mapped
//! shards (`/proc/self/maps`) every millisecond. Copying any one tensor whole (or widening it)
//! would exceed the bound by itself. The shards are sparse files, so the test writes almost
//! nothing to disk; their few non-zero values give statistics known in closed form. The
//! safetensors and GGUF readers unmap what they have read as they go, so file-backed memory
//! (`RssFile`) must stay under the same bound; a generated sparse 0.45 GB GGUF (F32 and Q8_0
//! tensors) checks the GGUF reader, whose whole file is one map.
//!
//! This file holds a single test: the allocator counts for the whole test binary. Linux only
//! (it reads `/proc/self`).
#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fingerprint::engine::{self, Options};
use fingerprint::source;

/// The bound of issue 9 on peak resident anonymous memory.
const LIMIT: usize = 256 << 20;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One tensor of a generated shard: all zeros except its first `ones` elements, which are 1.
struct Spec {
    name: String,
    dtype: &'static str,
    numel: u64,
    ones: u64,
}

impl Spec {
    fn new(name: &str, dtype: &'static str, numel: u64, ones: u64) -> Self {
        Spec {
            name: name.into(),
            dtype,
            numel,
            ones,
        }
    }

    fn size(&self) -> u64 {
        self.numel * if self.dtype == "BF16" { 2 } else { 4 }
    }
}

/// Write a sparse safetensors file: the header, then only the non-zero runs of each tensor.
fn write_shard(path: &Path, tensors: &[Spec]) {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for t in tensors {
        header.insert(
            t.name.clone(),
            serde_json::json!({
                "dtype": t.dtype,
                "shape": [t.numel],
                "data_offsets": [offset, offset + t.size()],
            }),
        );
        offset += t.size();
    }
    let mut json = serde_json::to_vec(&header).unwrap();
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let start = 8 + json.len() as u64;
    let mut f = File::create(path).unwrap();
    f.write_all(&(json.len() as u64).to_le_bytes()).unwrap();
    f.write_all(&json).unwrap();
    let mut at = start;
    for t in tensors {
        f.seek(SeekFrom::Start(at)).unwrap();
        let one: &[u8] = if t.dtype == "BF16" {
            &[0x80, 0x3f]
        } else {
            &[0, 0, 0x80, 0x3f]
        };
        f.write_all(&one.repeat(t.ones as usize)).unwrap();
        at += t.size();
    }
    // Extend to the full size without writing: the rest is a hole that reads as zeros.
    f.set_len(at).unwrap();
}

/// One tensor of a generated GGUF: F32 (`ones` leading 1.0 values) or Q8_0 (`ones` leading
/// blocks with scale 1.0 and every quant 1, i.e. 32 ones each); everything else zero.
struct GgufSpec {
    name: &'static str,
    q8: bool,
    numel: u64,
    ones: u64,
}

impl GgufSpec {
    fn size(&self) -> u64 {
        if self.q8 {
            self.numel / 32 * 34
        } else {
            self.numel * 4
        }
    }

    /// Values equal to 1.
    fn ones(&self) -> u64 {
        if self.q8 {
            self.ones * 32
        } else {
            self.ones
        }
    }
}

/// Write a sparse GGUF v3 file (alignment 32): header, infos, then only the non-zero runs.
fn write_gguf(path: &Path, tensors: &[GgufSpec]) {
    let mut h: Vec<u8> = Vec::new();
    let s = |h: &mut Vec<u8>, v: &str| {
        h.extend((v.len() as u64).to_le_bytes());
        h.extend(v.as_bytes());
    };
    h.extend(b"GGUF");
    h.extend(3u32.to_le_bytes());
    h.extend((tensors.len() as u64).to_le_bytes());
    h.extend(1u64.to_le_bytes());
    s(&mut h, "general.architecture");
    h.extend(8u32.to_le_bytes()); // string
    s(&mut h, "llama");
    let mut offset = 0u64;
    for t in tensors {
        s(&mut h, t.name);
        h.extend(2u32.to_le_bytes());
        h.extend(4096u64.to_le_bytes());
        h.extend((t.numel / 4096).to_le_bytes());
        h.extend(if t.q8 { 8u32 } else { 0u32 }.to_le_bytes());
        h.extend(offset.to_le_bytes());
        offset = (offset + t.size()).div_ceil(32) * 32;
    }
    h.resize(h.len().div_ceil(32) * 32, 0);
    let start = h.len() as u64;
    let mut f = File::create(path).unwrap();
    f.write_all(&h).unwrap();
    let mut at = start;
    for t in tensors {
        f.seek(SeekFrom::Start(at)).unwrap();
        let run: Vec<u8> = if t.q8 {
            let mut block = 0x3c00u16.to_le_bytes().to_vec(); // d = 1.0
            block.extend([1u8; 32]);
            block.repeat(t.ones as usize)
        } else {
            [0, 0, 0x80, 0x3f].repeat(t.ones as usize)
        };
        f.write_all(&run).unwrap();
        at += t.size().div_ceil(32) * 32;
    }
    f.set_len(at).unwrap();
}

/// `RssAnon` and `RssFile` of this process, in bytes.
fn rss() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in /proc/self/status (Linux >= 4.5)"));
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<usize>()
            .unwrap()
            * 1024
    };
    (field("RssAnon:"), field("RssFile:"))
}

/// How many distinct files under `dir` are memory-mapped right now.
fn mapped_shards(dir: &Path) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let dir = dir.to_string_lossy();
    let mut files: Vec<&str> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with(dir.as_ref()))
        .collect();
    files.sort_unstable();
    files.dedup();
    files.len()
}

struct Sample {
    peak_rss_anon: usize,
    peak_rss_file: usize,
    most_shards_mapped: usize,
    samples: usize,
}

/// Sample `RssAnon` and the mapped shards every millisecond until `stop`.
fn sampler(dir: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Sample> {
    std::thread::spawn(move || {
        let mut s = Sample {
            peak_rss_anon: 0,
            peak_rss_file: 0,
            most_shards_mapped: 0,
            samples: 0,
        };
        while !stop.load(Ordering::Relaxed) {
            let (anon, file) = rss();
            s.peak_rss_anon = s.peak_rss_anon.max(anon);
            s.peak_rss_file = s.peak_rss_file.max(file);
            s.most_shards_mapped = s.most_shards_mapped.max(mapped_shards(&dir));
            s.samples += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        s
    })
}

/// A fingerprint and the memory samples taken while computing it.
struct Measured {
    fp: fingerprint::Fingerprint,
    sample: Sample,
}

/// Fingerprint `input` (files under `dir`), printing and checking the peak growths.
fn measure(what: &str, dir: &Path, input: &Path, total: u64) -> Measured {
    let src = source::resolve(input.to_str().unwrap()).unwrap();
    let (anon_before, file_before) = rss();
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let heap_before = LIVE.load(Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let watch = sampler(dir.to_path_buf(), stop.clone());
    let started = Instant::now();
    let fp = engine::fingerprint(&src, &Options::default()).unwrap();
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let sample = watch.join().unwrap();
    let heap_growth = PEAK.load(Ordering::Relaxed) - heap_before;
    let anon_growth = sample.peak_rss_anon.saturating_sub(anon_before);
    let file_growth = sample.peak_rss_file.saturating_sub(file_before);
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    eprintln!(
        "memory ({what}): {:.2} GB in {elapsed:.2?}; peak growth: heap {:.1} MiB, RssAnon \
         {:.1} MiB, RssFile {:.1} MiB ({} samples; before: RssAnon {:.1} MiB, RssFile {:.1} \
         MiB); most files mapped at once: {}",
        total as f64 / 1e9,
        mib(heap_growth),
        mib(anon_growth),
        mib(file_growth),
        sample.samples,
        mib(anon_before),
        mib(file_before),
        sample.most_shards_mapped,
    );
    assert!(
        sample.samples > 10,
        "{what}: the sampler ran {} times",
        sample.samples
    );
    assert!(
        heap_growth < LIMIT,
        "{what}: peak heap grew by {heap_growth} bytes (limit {LIMIT})"
    );
    assert!(
        anon_growth < LIMIT,
        "{what}: peak RssAnon grew by {anon_growth} bytes (limit {LIMIT})"
    );
    // Both readers unmap the pages they have read, unit by unit, so not even the
    // file-backed resident set grows with the file size.
    assert!(
        file_growth < LIMIT,
        "{what}: peak RssFile grew by {file_growth} bytes (limit {LIMIT})"
    );
    Measured { fp, sample }
}

/// The statistics are right: `numel - ones` zeros and `ones` ones.
fn check_stats(fp: &fingerprint::Fingerprint, name: &str, numel: u64, ones: u64) {
    let row = fp.tensors.iter().find(|r| r.tensor == name).unwrap();
    let p = ones as f64 / numel as f64;
    assert_eq!(row.stats.numel, numel, "{name}");
    assert_eq!(row.stats.max, Some(1.0), "{name}");
    let mean = row.stats.mean.unwrap();
    let std = row.stats.std.unwrap();
    assert!((mean - p).abs() <= 1e-12 * p, "{name}: mean {mean} vs {p}");
    let want = (p * (1.0 - p)).sqrt();
    assert!(
        (std - want).abs() <= 1e-9 * want,
        "{name}: std {std} vs {want}"
    );
}

// One test (the allocator counts for the whole binary): the sharded safetensors checkpoint,
// then the GGUF file.
#[test]
fn memory_stays_bounded_on_multi_gigabyte_safetensors_and_gguf() {
    const M: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<Vec<Spec>> = vec![
        // 600 MB: one tensor larger than the whole bound, twice over once widened to f32.
        vec![
            Spec::new("model.layers.0.mlp.down_proj.weight", "BF16", 300 * M, 4096),
            Spec::new("model.layers.0.input_layernorm.weight", "BF16", 4096, 4096),
        ],
        // 480 MB of f32 (read zero-copy), in two tensors.
        vec![
            Spec::new("model.layers.1.self_attn.q_proj.weight", "F32", 64 * M, 1),
            Spec::new(
                "model.layers.1.mlp.up_proj.weight",
                "F32",
                56 * M,
                3 * 2048 + 5,
            ),
        ],
        // 320 MB of bf16 in many smaller tensors.
        (0..40)
            .map(|i| {
                Spec::new(
                    &format!("model.layers.2.mlp.experts.{i}.gate_proj.weight"),
                    "BF16",
                    4 * M,
                    i + 1,
                )
            })
            .collect(),
    ];
    let mut index = serde_json::Map::new();
    let mut total = 0;
    for (k, specs) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", k + 1, shards.len());
        write_shard(&dir.path().join(&file), specs);
        for t in specs {
            index.insert(t.name.clone(), file.clone().into());
            total += t.size();
        }
    }
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        serde_json::to_vec(&serde_json::json!({ "weight_map": index })).unwrap(),
    )
    .unwrap();
    assert!(total > 1_300_000_000, "{total} bytes");
    assert_eq!(
        source::resolve(dir.path().to_str().unwrap())
            .unwrap()
            .files
            .len(),
        3
    );

    let m = measure("safetensors", dir.path(), dir.path(), total);
    let specs: Vec<&Spec> = shards.iter().flatten().collect();
    assert_eq!(m.fp.tensors.len(), specs.len());
    for t in specs {
        check_stats(&m.fp, &t.name, t.numel, t.ones);
    }
    assert!(
        m.sample.most_shards_mapped <= 1,
        "{} shards were mapped at once: maps must be released shard by shard",
        m.sample.most_shards_mapped
    );

    // GGUF: one map over the whole file; 300 MB of F32 and 150 MB of Q8_0.
    let gdir = tempfile::tempdir().unwrap();
    let gguf = [
        GgufSpec {
            name: "blk.0.ffn_down.weight",
            q8: false,
            numel: 75 * M,
            ones: 4096 * 3 + 1,
        },
        GgufSpec {
            name: "blk.0.attn_q.weight",
            q8: true,
            numel: 140 * M,
            ones: 1000,
        },
    ];
    let path = gdir.path().join("model.gguf");
    write_gguf(&path, &gguf);
    let total: u64 = gguf.iter().map(GgufSpec::size).sum();
    assert!(total > 400_000_000, "{total} bytes");
    let m = measure("gguf", gdir.path(), &path, total);
    assert_eq!(m.fp.tensors.len(), gguf.len());
    for t in &gguf {
        check_stats(&m.fp, t.name, t.numel, t.ones());
    }
}
