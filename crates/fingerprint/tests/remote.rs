//! Remote reads over a loopback server standing in for the hub and for plain file hosts:
//! a remote fingerprint equals the local one bit for bit (real models when present, synthetic
//! shards and split GGUFs always), only the needed bytes are read, the token stays with the
//! hub, and every network fault gives the right numbers or an error naming the URL and tensor.
#![cfg(feature = "remote")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fingerprint::engine::{self, Options};
use fingerprint::remote::{default_roles, Client, HttpConfig, Remote, Token, Url};
use fingerprint::{source, Error, Fingerprint};
use safetensors::tensor::Dtype;
use testkit::hub::{Fault, Server};

const TOKEN: &str = "hf_loopbacksecret0123456789";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Quick retries and short deadlines, so the fault tests take seconds.
fn fast() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        retries: 2,
        backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
        ..HttpConfig::default()
    }
}

/// A client whose hub (and token's origin) is `hub`.
fn client(hub: &Server, config: HttpConfig) -> Client {
    let endpoint = Url::parse(&format!("{}/", hub.url())).unwrap();
    Client::new(config, endpoint, Token::new(TOKEN))
}

/// A client with a token for a hub that is not the server the test reads from.
fn elsewhere(config: HttpConfig) -> Client {
    let endpoint = Url::parse("http://127.0.0.1:9/").unwrap();
    Client::new(config, endpoint, Token::new(TOKEN))
}

fn opts() -> Options<'static> {
    Options {
        roles: Some(default_roles()),
        ..Options::default()
    }
}

/// The local fingerprint of `path` over the roles a remote one reads by default.
fn local(path: &Path) -> Fingerprint {
    let src = source::resolve(path.to_str().unwrap()).unwrap();
    engine::fingerprint(&src, &opts()).unwrap()
}

fn remote(spec: &str, client: Client) -> (Remote, Fingerprint) {
    let r = Remote::resolve(spec, client).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let fp = r.fingerprint(&Options::default()).unwrap();
    (r, fp)
}

/// Same rows, same bits.
fn assert_same(remote: &Fingerprint, local: &Fingerprint) {
    assert!(!local.tensors.is_empty());
    assert_eq!(remote.tensors.len(), local.tensors.len());
    for (r, l) in remote.tensors.iter().zip(&local.tensors) {
        assert_eq!(r, l, "{}", l.tensor);
        let bits = |x: Option<f64>| x.map(f64::to_bits);
        assert_eq!(bits(r.stats.std), bits(l.stats.std), "{}", l.tensor);
        assert_eq!(bits(r.stats.mean), bits(l.stats.mean), "{}", l.tensor);
    }
    assert_eq!(remote.model.config, local.model.config);
    assert_eq!(remote.model.architecture, local.model.architecture);
    assert_eq!(remote.model.format, local.model.format);
    assert!(!remote.to_json().contains(TOKEN));
}

fn header_sha256(path: &Path, len: u64) -> String {
    let bytes = std::fs::read(path).unwrap();
    fingerprint::hash::sha256_bytes(&bytes[..len as usize])
}

#[test]
fn safetensors_from_the_hub_equal_local_bit_for_bit() {
    let Some(path) = testkit::real_model(
        "safetensors_from_the_hub_equal_local_bit_for_bit",
        "all-minilm-l6-v2",
        "model.safetensors",
    ) else {
        return;
    };
    let dir = path.parent().unwrap();
    let hub = Server::start();
    hub.repo(
        "sentence-transformers/all-MiniLM-L6-v2",
        COMMIT,
        &[
            ("config.json", dir.join("config.json")),
            ("model.safetensors", path.clone()),
            ("README.md", dir.join("config.json")),
        ],
    );
    let (r, fp) = remote(
        "hf://sentence-transformers/all-MiniLM-L6-v2",
        client(&hub, fast()),
    );
    assert_same(&fp, &local(&path));
    assert_eq!(fp.model.revision.as_deref(), Some(COMMIT));
    assert_eq!(
        fp.model.repo_id.as_deref(),
        Some("sentence-transformers/all-MiniLM-L6-v2")
    );
    let f = &fp.model.files[0];
    let rr = f.remote.as_ref().unwrap();
    assert_eq!(
        (f.path.as_str(), f.size, &f.sha256),
        ("model.safetensors", 90868376, &None)
    );
    assert_eq!(rr.commit.as_deref(), Some(COMMIT));
    assert!(rr.etag.is_some());
    assert_eq!(rr.header_sha256, header_sha256(&path, rr.header_bytes));
    // 24 attention matrices of 384 × 384 f32 (14.2 MB) plus the first 1 MiB: a sixth of the
    // file, and what the ranges say is what the server sent.
    let (size, read) = r.bytes();
    assert_eq!(size, 90868376);
    assert_eq!(read, rr.bytes_read);
    assert!(read >= 24 * 384 * 384 * 4 && read < size / 5, "{read}");
    let sent = hub.bytes_served() as u64;
    assert!(sent >= read && sent < read + (1 << 20), "{sent} vs {read}");
    // Every request the hub got carried the token (it is the token's own origin).
    assert!(hub
        .requests()
        .iter()
        .all(|q| q.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))));
}

#[test]
fn safetensors_from_a_url_in_small_batches_equal_local() {
    let Some(path) = testkit::real_model(
        "safetensors_from_a_url_in_small_batches_equal_local",
        "all-mpnet-base-v2",
        "model.safetensors",
    ) else {
        return;
    };
    let host = Server::start();
    host.file("/m/all-mpnet-base-v2/model.safetensors", &path);
    host.file(
        "/m/all-mpnet-base-v2/config.json",
        path.with_file_name("config.json"),
    );
    // Batches of 8 MiB (each attention matrix is 2.25 MiB) in requests of at most 1 MiB.
    let config = HttpConfig {
        window: 8 << 20,
        max_request: 1 << 20,
        concurrency: 3,
        ..fast()
    };
    let url = format!("{}/m/all-mpnet-base-v2/model.safetensors", host.url());
    let (_, fp) = remote(&url, elsewhere(config));
    assert_same(&fp, &local(&path));
    assert_eq!(fp.model.name, "all-mpnet-base-v2");
    let big = host
        .requests()
        .iter()
        .filter_map(|q| q.range.clone())
        .any(|r| {
            let (a, b) = r.trim_start_matches("bytes=").split_once('-').unwrap();
            b.parse::<u64>().unwrap() + 1 - a.parse::<u64>().unwrap() > 1 << 20
        });
    assert!(!big, "a request over max_request");
    // Not the hub's origin: the token is not sent.
    assert!(host.requests().iter().all(|q| q.authorization.is_none()));
}

#[test]
fn gguf_from_the_hub_through_a_cdn_equal_local_and_keep_the_token_home() {
    let Some(path) = testkit::real_model(
        "gguf_from_the_hub_through_a_cdn_equal_local_and_keep_the_token_home",
        "smollm2-135m-instruct",
        "model.gguf",
    ) else {
        return;
    };
    let hub = Server::start();
    let cdn = Server::start();
    hub.repo(
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        COMMIT,
        &[
            ("smollm2-135m-instruct-q4_1.gguf", path.clone()),
            ("smollm2-135m-instruct-q8_0.gguf", path.clone()),
        ],
    );
    hub.redirect_to(&cdn.url());
    cdn.file(
        "/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q4_1.gguf",
        &path,
    );
    // Two GGUFs: the repository alone is ambiguous.
    let err = Remote::resolve(
        "hf://HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        client(&hub, fast()),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("holds 2 GGUF files; name one"), "{err}");
    let spec = format!(
        "hf://HuggingFaceTB/SmolLM2-135M-Instruct-GGUF@{COMMIT}/smollm2-135m-instruct-q4_1.gguf"
    );
    let (r, fp) = remote(&spec, client(&hub, fast()));
    assert_same(&fp, &local(&path));
    let rr = fp.model.files[0].remote.as_ref().unwrap();
    assert_eq!(rr.header_sha256, header_sha256(&path, rr.header_bytes));
    // The commit comes from the hub's redirect; the ETag from the CDN.
    assert_eq!(rr.commit.as_deref(), Some(COMMIT));
    assert!(rr.etag.is_some());
    let (size, read) = r.bytes();
    assert!(read < size / 4, "{read} of {size}");
    // The hub saw the token; the CDN, another origin, never did.
    assert!(hub.requests().iter().all(|q| q.authorization.is_some()));
    assert!(!cdn.requests().is_empty());
    assert!(cdn.requests().iter().all(|q| q.authorization.is_none()));
}

#[test]
fn gguf_from_a_url_equals_local() {
    let Some(path) =
        testkit::real_model("gguf_from_a_url_equals_local", "gemma3-270m", "model.gguf")
    else {
        return;
    };
    let host = Server::start();
    host.file("/gemma/gemma-3-270m-q4_k_m.gguf", &path);
    let url = format!("{}/gemma/gemma-3-270m-q4_k_m.gguf", host.url());
    let (r, fp) = remote(&url, client(&host, fast()));
    assert_same(&fp, &local(&path));
    let (size, read) = r.bytes();
    assert!(read < size / 4, "{read} of {size}");
}

/// A GGUF v3 file of F32 tensors `(name, values)` with `kvs` string and u32 metadata.
fn gguf(strings: &[(&str, &str)], u32s: &[(&str, u32)], tensors: &[(&str, Vec<f32>)]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    let s = |b: &mut Vec<u8>, x: &str| {
        b.extend((x.len() as u64).to_le_bytes());
        b.extend(x.as_bytes());
    };
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend(((strings.len() + u32s.len()) as u64).to_le_bytes());
    for (k, v) in strings {
        s(&mut b, k);
        b.extend(8u32.to_le_bytes());
        s(&mut b, v);
    }
    for (k, v) in u32s {
        s(&mut b, k);
        b.extend(4u32.to_le_bytes());
        b.extend(v.to_le_bytes());
    }
    let mut offset = 0u64;
    for (name, values) in tensors {
        s(&mut b, name);
        b.extend(1u32.to_le_bytes());
        b.extend((values.len() as u64).to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(offset.to_le_bytes());
        offset += (values.len() as u64 * 4).next_multiple_of(32);
    }
    b.resize(b.len().next_multiple_of(32), 0);
    for (_, values) in tensors {
        b.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        b.resize(b.len().next_multiple_of(32), 0);
    }
    b
}

#[test]
fn split_gguf_from_a_url_equals_local() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = common::Values::new(5);
    let t = |v: &mut common::Values, n: &str| (n.to_owned(), v.take(64 * 64, 0.05));
    let (a, b, c) = (
        t(&mut v, "blk.0.attn_q.weight"),
        t(&mut v, "blk.0.attn_k.weight"),
        t(&mut v, "blk.1.attn_q.weight"),
    );
    fn as_ref(x: &(String, Vec<f32>)) -> (&str, Vec<f32>) {
        (x.0.as_str(), x.1.clone())
    }
    let first = gguf(
        &[("general.architecture", "llama")],
        &[("llama.block_count", 2), ("llama.embedding_length", 64)],
        &[as_ref(&a), as_ref(&b)],
    );
    let second = gguf(&[], &[("split.no", 1)], &[as_ref(&c)]);
    let p1 = dir.path().join("m-00001-of-00002.gguf");
    std::fs::write(&p1, first).unwrap();
    std::fs::write(dir.path().join("m-00002-of-00002.gguf"), second).unwrap();
    let host = Server::start();
    for n in ["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"] {
        host.file(&format!("/s/{n}"), dir.path().join(n));
    }
    let (_, fp) = remote(
        &format!("{}/s/m-00001-of-00002.gguf", host.url()),
        client(&host, fast()),
    );
    assert_eq!(fp.model.files.len(), 2);
    assert_eq!(fp.tensors.len(), 3);
    assert_same(&fp, &local(&p1));
}

/// A sharded tiny llama in `dir`, served by a hub repository and a plain host.
fn sharded(dir: &Path) -> (Server, Vec<(String, PathBuf)>) {
    common::write_sharded(dir, &common::tiny_llama(3, 64, 7), Dtype::BF16, 3);
    std::fs::write(dir.join("config.json"), common::llama_config(3, 64)).unwrap();
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), p)
        })
        .collect();
    files.sort();
    let server = Server::start();
    let named: Vec<(&str, PathBuf)> = files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    server.repo("org/tiny", COMMIT, &named);
    for (n, p) in &files {
        server.file(&format!("/plain/{n}"), p);
    }
    (server, files)
}

#[test]
fn sharded_safetensors_from_the_hub_and_from_an_index_url_equal_local() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = sharded(dir.path());
    let want = local(dir.path());
    assert_eq!(want.tensors.len(), 12);
    let (_, fp) = remote("hf://org/tiny", client(&server, fast()));
    assert_eq!(fp.model.files.len(), 3);
    assert_same(&fp, &want);
    let url = format!("{}/plain/model.safetensors.index.json", server.url());
    let (_, fp) = remote(&url, client(&server, fast()));
    assert_same(&fp, &want);
    // Every role when asked: the MLP and norms come too, still equal.
    let all = Options::default();
    let src = source::resolve(dir.path().to_str().unwrap()).unwrap();
    let want_all = engine::fingerprint(&src, &all).unwrap();
    let r = Remote::resolve("hf://org/tiny", client(&server, fast())).unwrap();
    let roles: Vec<_> = want_all.tensors.iter().map(|t| t.role.clone()).collect();
    let got = r
        .fingerprint(&Options {
            roles: Some(roles),
            ..Options::default()
        })
        .unwrap();
    assert_same(&got, &want_all);
}

/// A small single-file model on a plain host, for the fault tests.
struct Tiny {
    _dir: tempfile::TempDir,
    server: Server,
    url: String,
    want: Fingerprint,
}

fn tiny() -> Tiny {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    common::write_safetensors(&path, &common::tiny_llama(2, 64, 3), Dtype::F32);
    let server = Server::start();
    server.file("/t/model.safetensors", &path);
    let url = format!("{}/t/model.safetensors", server.url());
    let want = local(&path);
    Tiny {
        _dir: dir,
        server,
        url,
        want,
    }
}

/// Fingerprint the tiny model with `fault` on its tensor reads (byte 1 on): the result, or
/// the error text (checked to name the URL and never the token).
fn with_fault(
    fault: Fault,
    count: usize,
    config: HttpConfig,
) -> (Tiny, Result<Fingerprint, String>) {
    let t = tiny();
    t.server.fault(fault, 1, count);
    let got = Remote::resolve(&t.url, client(&t.server, config))
        .and_then(|r| r.fingerprint(&Options::default()))
        .map_err(|e: Error| e.to_string());
    if let Err(e) = &got {
        assert!(e.contains(&t.url), "{e}");
        assert!(!e.contains(TOKEN), "{e}");
    }
    (t, got)
}

fn fails_on_tensor(fault: Fault, config: HttpConfig, expect: &str) {
    let (_, got) = with_fault(fault.clone(), 100, config);
    let e = got
        .err()
        .unwrap_or_else(|| panic!("{fault:?} gave a fingerprint"));
    assert!(e.contains("tensor model.layers."), "{fault:?}: {e}");
    assert!(e.contains(expect), "{fault:?}: {e}");
}

#[test]
fn transient_faults_are_retried_to_the_right_result() {
    for fault in [
        Fault::Status {
            code: 429,
            retry_after: Some(1),
        },
        Fault::Status {
            code: 503,
            retry_after: None,
        },
        Fault::ShortBody,
        Fault::Stall(Duration::from_secs(3)),
    ] {
        let (t, got) = with_fault(fault.clone(), 1, fast());
        let fp = got.unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_same(&fp, &t.want);
    }
}

#[test]
fn persistent_faults_are_errors_naming_the_url_and_tensor() {
    fails_on_tensor(
        Fault::Status {
            code: 503,
            retry_after: None,
        },
        fast(),
        "HTTP 503 (after 2 retries)",
    );
    fails_on_tensor(
        Fault::Status {
            code: 429,
            retry_after: Some(3600),
        },
        fast(),
        "retry after 3600 s, over the 2 s cap",
    );
    fails_on_tensor(
        Fault::Status {
            code: 404,
            retry_after: None,
        },
        fast(),
        "HTTP 404",
    );
    fails_on_tensor(Fault::IgnoreRange, fast(), "ignored the Range header");
    fails_on_tensor(Fault::NoContentRange, fast(), "without a Content-Range");
    fails_on_tensor(Fault::ShiftedRange, fast(), "does not match the request");
    fails_on_tensor(Fault::ShortBody, fast(), "reading the body");
    fails_on_tensor(Fault::LongBody, fast(), "does not match the");
    fails_on_tensor(Fault::NewEtag, fast(), "changed between requests");
    fails_on_tensor(Fault::HugeHeader, fast(), "header field longer than");
}

#[test]
fn stalls_and_drips_time_out() {
    let quick = HttpConfig {
        timeout: Duration::from_millis(500),
        retries: 1,
        ..fast()
    };
    fails_on_tensor(
        Fault::Stall(Duration::from_secs(3)),
        quick.clone(),
        "after 1 retries",
    );
    // 30 KB of tensors a byte per 10 ms would take five minutes: the deadline cuts it off.
    fails_on_tensor(
        Fault::Drip(Duration::from_millis(10)),
        quick,
        "after 1 retries",
    );
}

#[test]
fn a_server_ignoring_range_on_the_first_read_is_refused_without_reading_it() {
    let t = tiny();
    t.server.fault(Fault::IgnoreRange, 0, 100);
    let e = Remote::resolve(&t.url, client(&t.server, fast()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&t.url) && e.contains("the header"), "{e}");
    assert!(e.contains("ignored the Range header"), "{e}");
}

#[test]
fn hostile_headers_over_http_are_rejected_before_any_offset_is_used() {
    let host = Server::start();
    // A safetensors header whose only tensor claims bytes past the end of the file.
    let json = br#"{"w":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}"#;
    let mut bad = (json.len() as u64).to_le_bytes().to_vec();
    bad.extend_from_slice(json);
    bad.extend([0u8; 400]);
    host.bytes("/h/model.safetensors", bad);
    // A header length beyond the file.
    let mut long = (1u64 << 40).to_le_bytes().to_vec();
    long.extend_from_slice(b"{}");
    host.bytes("/h/long.safetensors", long);
    // A GGUF claiming 2^40 tensors.
    let mut g = b"GGUF".to_vec();
    g.extend(3u32.to_le_bytes());
    g.extend((1u64 << 40).to_le_bytes());
    g.extend(0u64.to_le_bytes());
    host.bytes("/h/model.gguf", g);
    host.bytes("/h/model.bin", b"PK\x03\x04 not a header".to_vec());
    for (file, expect) in [
        ("model.safetensors", "data section"),
        ("long.safetensors", "header length"),
        ("model.gguf", "tensor count"),
        ("model.bin", "only safetensors and GGUF"),
    ] {
        let url = format!("{}/h/{file}", host.url());
        let e = Remote::resolve(&url, client(&host, fast()))
            .err()
            .unwrap_or_else(|| panic!("{file} resolved"))
            .to_string();
        assert!(e.contains(&url) && e.contains(expect), "{file}: {e}");
    }
}

#[test]
fn hub_errors_name_the_repository() {
    let hub = Server::start();
    let e = Remote::resolve("hf://org/missing", client(&hub, fast()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("hf://org/missing") && e.contains("404"), "{e}");
    hub.repo("org/empty", COMMIT, &[]);
    let e = Remote::resolve("hf://org/empty@main", client(&hub, fast()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no top-level"), "{e}");
}

/// `--sample N` over the hub: the same seed reads the same byte ranges, the estimates equal a
/// local sampled fingerprint bit for bit, and far fewer bytes are read than for the exact one.
#[test]
fn a_sampled_remote_fingerprint_reads_the_same_ranges_for_a_seed() {
    let Some(path) = testkit::real_model(
        "a_sampled_remote_fingerprint_reads_the_same_ranges_for_a_seed",
        "qwen2.5-coder-0.5b-instruct-awq",
        "model.gguf",
    ) else {
        return;
    };
    let hub = Server::start();
    hub.repo(
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        COMMIT,
        &[("model.gguf", path.clone())],
    );
    let sample = |seed| fingerprint::sample::Sampling { blocks: 16, seed };
    let run = |seed| {
        let config = HttpConfig {
            coalesce_gap: fingerprint::remote::SAMPLED_COALESCE_GAP,
            ..fast()
        };
        let r = Remote::resolve(
            "hf://Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            client(&hub, config),
        )
        .unwrap();
        let fp = r.fingerprint_sampled(&opts(), Some(&sample(seed))).unwrap();
        (r.bytes(), fp)
    };
    let ((size, read), a) = run(5);
    let (_, b) = run(5);
    let (_, c) = run(6);
    let ranges = |fp: &Fingerprint| fp.model.files[0].remote.clone().unwrap().ranges;
    assert_eq!(ranges(&a), ranges(&b));
    assert_ne!(ranges(&a), ranges(&c));
    assert_eq!(a.tensors, b.tensors);
    let src = source::resolve(path.to_str().unwrap()).unwrap();
    let local =
        engine::fingerprint_sampled_with(&src, &opts(), &engine::LocalFiles, Some(&sample(5)))
            .unwrap();
    assert_eq!(a.tensors, local.tensors);
    assert!(a.sampling.is_some() && a.tensors.iter().all(|r| r.se.is_some()));
    let exact = Remote::resolve(
        "hf://Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        client(&hub, fast()),
    )
    .unwrap();
    exact.fingerprint(&Options::default()).unwrap();
    let (_, exact_read) = exact.bytes();
    eprintln!("sampled read {read} of {size} bytes; exact read {exact_read}");
    // Past the header (the same for both): 16 clusters of 8 Q5_0/Q8_0 blocks per slice,
    // merged with neighbours closer than SAMPLED_COALESCE_GAP.
    let head = a.model.files[0].remote.as_ref().unwrap().ranges[0][1];
    assert!(
        (read - head) * 4 < exact_read - head,
        "{read} vs {exact_read}, header {head}"
    );
}
