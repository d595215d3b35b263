//! Fingerprint models where they are hosted, reading only the bytes the fingerprint needs.
//!
//! `https://…/model.safetensors` (or `.gguf`, or a `model.safetensors.index.json` with its
//! shards) and `hf://ORG/NAME[@REV][/FILE]` are resolved to a [`Remote`]: the hub's
//! model-info endpoint (`/api/models/ORG/NAME/revision/REV`) gives the commit and the file
//! list, and every file is then read at that commit (`/ORG/NAME/resolve/COMMIT/FILE`). Each
//! weight file's header is fetched with range requests and validated by the local readers'
//! own code ([`crate::format`]); the engine then asks for the tensors of the selected roles,
//! which are fetched in parallel ranges, batch by batch with bounded memory
//! ([`HttpConfig::window`]), and decoded by the same decoders as a mapped file, so a remote
//! fingerprint equals the local one bit for bit. The provenance of each file records its URL,
//! size, ETag, commit, header hash and the byte ranges read ([`crate::RemoteRead`]); no
//! SHA-256 of a whole file is claimed, since the whole file is not read.

pub mod http;
pub mod reader;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

pub use http::{Client, HttpConfig, Token};
pub use reader::{RemoteFile, RemoteReader};
pub use url::Url;

use crate::config::{ConfigSummary, MAX_CONFIG_BYTES};
use crate::engine::{self, Files, Options};
use crate::error::{Error, Result};
use crate::format::{Format, TensorReader};
use crate::roles::Role;
use crate::schema::{FileInfo, Fingerprint, RemoteRead};
use crate::source::{self, ModelSource, ShardIndex, MAX_INDEX_BYTES};

/// Largest model-info listing accepted (a repository with tens of thousands of files).
pub const MAX_INFO_BYTES: u64 = 32 << 20;

/// Largest gap between two sampled clusters read in one request (`--sample`): a sample is
/// meant to read few bytes, so neighbouring clusters share a request only when the bytes in
/// between cost less than about a round trip's worth on a slow link (16 KB at 50 ms and
/// 2.5 Mbit/s), not the exact reads' [`HttpConfig::coalesce_gap`].
pub const SAMPLED_COALESCE_GAP: u64 = 16 << 10;

/// What a remote model argument names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// A plain `http(s)://` URL of a weight file or a shard index.
    Url(Url),
    /// `hf://ORG/NAME[@REV][/FILE]`.
    Hub {
        /// `ORG/NAME`.
        repo: String,
        /// Branch, tag or commit (`main` when absent).
        revision: Option<String>,
        /// One file of the repository (a GGUF among several), when named.
        file: Option<String>,
    },
}

/// Whether `spec` is a remote model argument (`http://`, `https://` or `hf://`).
pub fn is_remote(spec: &str) -> bool {
    ["http://", "https://", "hf://"]
        .iter()
        .any(|p| spec.starts_with(p))
}

/// Parse a remote model argument.
pub fn parse_spec(spec: &str) -> Result<Spec> {
    let bad = |reason: String| Error::NotFound {
        spec: spec.to_owned(),
        reason,
    };
    if let Some(rest) = spec.strip_prefix("hf://") {
        let mut parts = rest.splitn(3, '/');
        let org = parts.next().unwrap_or("");
        let name_rev = parts.next().unwrap_or("");
        let file = parts.next().filter(|f| !f.is_empty()).map(str::to_owned);
        let (name, revision) = match name_rev.split_once('@') {
            Some((n, r)) => (n, Some(r.to_owned())),
            None => (name_rev, None),
        };
        let ok = |s: &str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !ok(org) || !ok(name) {
            return Err(bad("expected hf://ORG/NAME[@REV][/FILE]".into()));
        }
        if revision.as_deref().is_some_and(|r| r.is_empty()) {
            return Err(bad("empty revision after '@'".into()));
        }
        if let Some(f) = &file {
            if f.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
                return Err(bad(format!(
                    "file {f:?} is not a path inside the repository"
                )));
            }
        }
        return Ok(Spec::Hub {
            repo: format!("{org}/{name}"),
            revision,
            file,
        });
    }
    let url = Url::parse(spec).map_err(|e| bad(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("expected an http(s) URL with a host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials in the URL would end up in the provenance; use HF_TOKEN".into(),
        ));
    }
    Ok(Spec::Url(url))
}

/// The roles a remote fingerprint reads when none are given: the attention projections the
/// default measure uses, so nothing else is fetched.
pub fn default_roles() -> Vec<Role> {
    Role::ATTENTION.to_vec()
}

/// A remote model, resolved: its [`ModelSource`] (file "paths" are URLs) and the opened
/// files.
pub struct Remote {
    /// The model as the engine sees it.
    pub source: ModelSource,
    files: RemoteFiles,
}

/// The [`Files`] of a remote model.
struct RemoteFiles {
    client: Arc<Client>,
    files: Vec<Arc<RemoteFile>>,
    config: ConfigSummary,
}

impl Files for RemoteFiles {
    fn open(&self, _src: &ModelSource, file: usize) -> Result<Box<dyn TensorReader>> {
        Ok(Box::new(RemoteReader::new(
            self.client.clone(),
            self.files[file].clone(),
        )?))
    }

    fn config(&self, _src: &ModelSource) -> Result<ConfigSummary> {
        Ok(self.config.clone())
    }

    fn info(&self, _src: &ModelSource, file: usize, _hash: bool) -> Result<FileInfo> {
        let f = &self.files[file];
        let ranges: Vec<[u64; 2]> = f.ranges_read().iter().map(|r| [r.start, r.end]).collect();
        Ok(FileInfo {
            path: f.name.clone(),
            size: f.size,
            sha256: None,
            hash_source: None,
            remote: Some(RemoteRead {
                url: f.url.to_string(),
                etag: f.etag.clone(),
                commit: f.commit.clone(),
                header_bytes: f.header_len,
                header_sha256: crate::hash::sha256_bytes(f.header()),
                bytes_read: ranges.iter().map(|r| r[1] - r[0]).sum(),
                ranges,
            }),
        })
    }
}

impl Remote {
    /// Resolve `spec` ([`parse_spec`]) and read the header of every weight file.
    pub fn resolve(spec: &str, client: Client) -> Result<Remote> {
        let client = Arc::new(client);
        match parse_spec(spec)? {
            Spec::Url(url) => resolve_url(spec, client, url),
            Spec::Hub {
                repo,
                revision,
                file,
            } => resolve_hub(spec, client, &repo, revision.as_deref(), file.as_deref()),
        }
    }

    /// The engine's view of the files.
    pub fn files(&self) -> &dyn Files {
        &self.files
    }

    /// Read the headers and map the tensors to roles ([`engine::plan`]).
    pub fn plan(&self) -> Result<engine::Plan> {
        engine::plan_with(&self.source, &self.files)
    }

    /// Fingerprint the model: only the tensors of `opts.roles` are fetched
    /// ([`default_roles`] when `None`).
    pub fn fingerprint(&self, opts: &Options<'_>) -> Result<Fingerprint> {
        self.fingerprint_sampled(opts, None)
    }

    /// [`Remote::fingerprint`], reading only a seeded sample of each slice when `sample` is
    /// given ([`crate::sample`]).
    pub fn fingerprint_sampled(
        &self,
        opts: &Options<'_>,
        sample: Option<&crate::sample::Sampling>,
    ) -> Result<Fingerprint> {
        let defaulted;
        let opts = if opts.roles.is_none() {
            defaulted = Options {
                hash: opts.hash,
                roles: Some(default_roles()),
                command: opts.command.clone(),
                progress: opts.progress,
                vectors: opts.vectors,
            };
            &defaulted
        } else {
            opts
        };
        engine::fingerprint_sampled_with(&self.source, opts, &self.files, sample)
    }

    /// Total bytes of the weight files and bytes read from them so far.
    pub fn bytes(&self) -> (u64, u64) {
        let size = self.files.files.iter().map(|f| f.size).sum();
        let read = self
            .files
            .files
            .iter()
            .flat_map(|f| f.ranges_read())
            .map(|r| r.end - r.start)
            .sum();
        (size, read)
    }
}

/// Build the [`Remote`] once the weight files' URLs are known: every header and the
/// configuration are fetched in parallel (a round trip each, `concurrency` at a time).
#[allow(clippy::too_many_arguments)]
fn assemble(
    spec: &str,
    name: String,
    client: Arc<Client>,
    base: &Url,
    weights: Vec<(Url, String)>,
    config_url: Option<Url>,
    index: Option<(Url, Vec<(String, String)>)>,
    repo_id: Option<String>,
    revision: Option<String>,
) -> Result<Remote> {
    let next = AtomicUsize::new(0);
    let opened: Vec<Mutex<Option<Result<RemoteFile>>>> =
        weights.iter().map(|_| Mutex::new(None)).collect();
    let workers = client.config().concurrency.clamp(1, weights.len().max(1));
    let config = std::thread::scope(|scope| {
        let config = config_url
            .as_ref()
            .map(|u| scope.spawn(|| fetch_config(&client, u)));
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((url, file_name)) = weights.get(i) else {
                    break;
                };
                let got = RemoteFile::open(&client, url.clone(), file_name.clone());
                if let Ok(mut slot) = opened[i].lock() {
                    *slot = Some(got);
                }
            });
        }
        config.map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(Error::NotFound {
                    spec: spec.to_owned(),
                    reason: "the thread fetching config.json panicked".into(),
                })
            })
        })
    });
    let config = config.transpose()?.flatten();
    let mut files = Vec::with_capacity(weights.len());
    for (slot, (url, _)) in opened.into_iter().zip(&weights) {
        match slot.into_inner().ok().flatten() {
            Some(f) => files.push(Arc::new(f?)),
            None => {
                return Err(Error::Http {
                    url: url.to_string(),
                    reason: "the header was not read".into(),
                })
            }
        }
    }
    let format = files.first().map_or(Format::Safetensors, |f| f.format);
    if let Some(odd) = files.iter().find(|f| f.format != format) {
        return Err(Error::NotFound {
            spec: spec.to_owned(),
            reason: format!("{} is {}, the first file {format}", odd.url, odd.format),
        });
    }
    let source = ModelSource {
        spec: spec.to_owned(),
        name,
        format,
        files: files
            .iter()
            .map(|f| PathBuf::from(f.url.as_str()))
            .collect(),
        root: PathBuf::from(base.as_str()),
        config: config.as_ref().map(|(u, _)| PathBuf::from(u.as_str())),
        index: index.map(|(u, pairs)| (PathBuf::from(u.as_str()), pairs)),
        repo_id,
        revision,
    };
    Ok(Remote {
        source,
        files: RemoteFiles {
            client,
            files,
            config: config.map(|(_, c)| c).unwrap_or_default(),
        },
    })
}

/// `config.json` at `url`, if the server has it.
fn fetch_config(client: &Client, url: &Url) -> Result<Option<(Url, ConfigSummary)>> {
    let Some(whole) = client.get_whole(url, MAX_CONFIG_BYTES)? else {
        return Ok(None);
    };
    let v: Value = serde_json::from_slice(&whole.bytes).map_err(|e| Error::InvalidJson {
        path: PathBuf::from(url.as_str()),
        reason: format!("not valid JSON: {e}"),
    })?;
    if !v.is_object() {
        return Err(Error::InvalidJson {
            path: PathBuf::from(url.as_str()),
            reason: "config.json is not a JSON object".into(),
        });
    }
    Ok(Some((url.clone(), ConfigSummary::from_json(&v))))
}

/// The shard index at `url`.
fn fetch_index(client: &Client, spec: &str, url: &Url) -> Result<ShardIndex> {
    let whole = client
        .get_whole(url, MAX_INDEX_BYTES)?
        .ok_or_else(|| Error::NotFound {
            spec: spec.to_owned(),
            reason: format!("{url}: HTTP 404"),
        })?;
    source::parse_index(&PathBuf::from(url.as_str()), &whole.bytes)
}

/// The last path segment of a URL.
fn last_segment(url: &Url) -> String {
    url.path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .unwrap_or_default()
}

fn join(base: &Url, rel: &str, spec: &str) -> Result<Url> {
    base.join(rel).map_err(|e| Error::NotFound {
        spec: spec.to_owned(),
        reason: format!("{rel}: {e}"),
    })
}

fn resolve_url(spec: &str, client: Arc<Client>, url: Url) -> Result<Remote> {
    let file = last_segment(&url);
    let dir = join(&url, ".", spec)?;
    let dir_name = dir
        .path_segments()
        .and_then(|mut s| s.rfind(|p| !p.is_empty()).map(str::to_owned));
    let stem = file.split('.').next().unwrap_or("model").to_owned();
    let generic = ["model", "pytorch_model", "consolidated"];
    let name = match dir_name {
        Some(d) if generic.iter().any(|g| stem.starts_with(g)) => d,
        _ => stem,
    };
    let (weights, index) = if file.ends_with(".index.json") {
        let ShardIndex { pairs, shards } = fetch_index(&client, spec, &url)?;
        let weights = shards
            .iter()
            .map(|s| Ok((join(&dir, s, spec)?, s.clone())))
            .collect::<Result<Vec<_>>>()?;
        (weights, Some((url.clone(), pairs)))
    } else if let Some(parts) = source::split_names(&file) {
        let weights = parts
            .into_iter()
            .map(|p| Ok((join(&dir, &p, spec)?, p)))
            .collect::<Result<Vec<_>>>()?;
        (weights, None)
    } else {
        (vec![(url.clone(), file.clone())], None)
    };
    // Configuration matters for safetensors (fused projections are split by head counts);
    // GGUF carries its own.
    let config = if file.ends_with(".gguf") {
        None
    } else {
        Some(join(&dir, "config.json", spec)?)
    };
    assemble(spec, name, client, &dir, weights, config, index, None, None)
}

fn resolve_hub(
    spec: &str,
    client: Arc<Client>,
    repo: &str,
    revision: Option<&str>,
    file: Option<&str>,
) -> Result<Remote> {
    let not_found = |reason: String| Error::NotFound {
        spec: spec.to_owned(),
        reason,
    };
    let endpoint = client.endpoint().clone();
    let rev = revision.unwrap_or("main");
    let mut info_url = join(&endpoint, "api/models/", spec)?;
    info_url
        .path_segments_mut()
        .map_err(|_| not_found("HF_ENDPOINT cannot hold a path".into()))?
        .pop_if_empty()
        .extend(repo.split('/'))
        .push("revision")
        .push(rev);
    let info = client
        .get_whole(&info_url, MAX_INFO_BYTES)?
        .ok_or_else(|| {
            not_found(format!(
                "{info_url}: HTTP 404: no such repository or revision"
            ))
        })?;
    let v: Value = serde_json::from_slice(&info.bytes).map_err(|e| Error::InvalidJson {
        path: PathBuf::from(info_url.as_str()),
        reason: format!("not valid JSON: {e}"),
    })?;
    let sha = v
        .get("sha")
        .and_then(Value::as_str)
        .filter(|s| s.len() == 40 && s.bytes().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| Error::InvalidJson {
            path: PathBuf::from(info_url.as_str()),
            reason: "no \"sha\" commit (40 hex digits)".into(),
        })?
        .to_owned();
    let names: Vec<String> = v
        .get("siblings")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|x| x.get("rfilename").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut base = join(&endpoint, "", spec)?;
    base.path_segments_mut()
        .map_err(|_| not_found("HF_ENDPOINT cannot hold a path".into()))?
        .pop_if_empty()
        .extend(repo.split('/'))
        .push("resolve")
        .push(&sha)
        .push("");
    let file_url = |name: &str| -> Result<Url> {
        let mut u = base.clone();
        u.path_segments_mut()
            .map_err(|_| not_found("HF_ENDPOINT cannot hold a path".into()))?
            .pop_if_empty()
            .extend(name.split('/'));
        Ok(u)
    };
    let has = |n: &str| names.iter().any(|x| x == n);
    let top = |suffix: &str| -> Vec<String> {
        let mut v: Vec<String> = names
            .iter()
            .filter(|n| !n.contains('/') && n.ends_with(suffix))
            .cloned()
            .collect();
        v.sort();
        v
    };
    let mut index = None;
    let chosen: Vec<String> = if let Some(f) = file {
        if !has(f) {
            return Err(not_found(format!("{repo}@{sha} has no file {f}")));
        }
        if f.ends_with(".index.json") {
            let url = file_url(f)?;
            let ShardIndex { pairs, shards } = fetch_index(&client, spec, &url)?;
            index = Some((url, pairs));
            let dir = f
                .rsplit_once('/')
                .map_or(String::new(), |(d, _)| format!("{d}/"));
            shards.iter().map(|s| format!("{dir}{s}")).collect()
        } else if let Some(parts) = source::split_names(f) {
            let dir = f
                .rsplit_once('/')
                .map_or(String::new(), |(d, _)| format!("{d}/"));
            parts.into_iter().map(|p| format!("{dir}{p}")).collect()
        } else {
            vec![f.to_owned()]
        }
    } else if has("model.safetensors.index.json") {
        let url = file_url("model.safetensors.index.json")?;
        let ShardIndex { pairs, shards } = fetch_index(&client, spec, &url)?;
        index = Some((url, pairs));
        shards
    } else if !top(".safetensors").is_empty() {
        top(".safetensors")
    } else {
        let ggufs = top(".gguf");
        let firsts: Vec<&String> = ggufs
            .iter()
            .filter(|g| source::split_names(g).is_none_or(|p| p.first().is_some_and(|f| f == *g)))
            .collect();
        match firsts.as_slice() {
            [one] => source::split_names(one).unwrap_or_else(|| vec![(*one).clone()]),
            [] => {
                return Err(not_found(format!(
                    "{repo}@{sha} has no top-level *.safetensors or *.gguf file"
                )))
            }
            many => {
                return Err(not_found(format!(
                    "{repo}@{sha} holds {} GGUF files; name one: hf://{repo}@{sha}/{}",
                    many.len(),
                    many[0]
                )))
            }
        }
    };
    for c in &chosen {
        if !has(c) {
            return Err(not_found(format!("{repo}@{sha} has no file {c}")));
        }
    }
    let weights = chosen
        .iter()
        .map(|c| Ok((file_url(c)?, c.clone())))
        .collect::<Result<Vec<_>>>()?;
    let config = if has("config.json") && !chosen.iter().all(|c| c.ends_with(".gguf")) {
        Some(file_url("config.json")?)
    } else {
        None
    };
    let remote = assemble(
        spec,
        repo.to_owned(),
        client,
        &base,
        weights,
        config,
        index,
        Some(repo.to_owned()),
        Some(sha.clone()),
    )?;
    for f in &remote.files.files {
        if let Some(c) = &f.commit {
            if !c.eq_ignore_ascii_case(&sha) {
                return Err(Error::Http {
                    url: f.url.to_string(),
                    reason: format!("the hub served commit {c}, not the resolved {sha}"),
                });
            }
        }
    }
    Ok(remote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            parse_spec("hf://Qwen/Qwen2.5-0.5B@v1/sub/m.gguf").unwrap(),
            Spec::Hub {
                repo: "Qwen/Qwen2.5-0.5B".into(),
                revision: Some("v1".into()),
                file: Some("sub/m.gguf".into()),
            }
        );
        assert_eq!(
            parse_spec("hf://a/b").unwrap(),
            Spec::Hub {
                repo: "a/b".into(),
                revision: None,
                file: None
            }
        );
        for bad in [
            "hf://a",
            "hf://../b",
            "hf://a/b@",
            "hf://a/b/../x",
            "ftp://h/x",
            "https://user:pw@h/x.safetensors",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
        assert!(is_remote("https://h/x") && is_remote("hf://a/b") && !is_remote("/x"));
    }
}
