//! Where a model's bytes are: a file, a directory (with or without a shard index), a Hugging
//! Face snapshot, or a repo id resolved offline in the local Hugging Face cache.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::format::{self, Format};

/// Largest shard index (`*.index.json`) nullprint will parse.
pub const MAX_INDEX_BYTES: u64 = 64 << 20;

/// A resolved model: its weight files in reading order, plus side files.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSource {
    /// What the user gave.
    pub spec: String,
    /// A short display name.
    pub name: String,
    /// Container format of the weight files.
    pub format: Format,
    /// Weight files, in order (shards in index order).
    pub files: Vec<PathBuf>,
    /// The directory holding the files (for relative names in the provenance).
    pub root: PathBuf,
    /// `config.json`, when present.
    pub config: Option<PathBuf>,
    /// Shard index, when the model has one: tensor name -> shard file name.
    pub index: Option<(PathBuf, Vec<(String, String)>)>,
    /// Hugging Face repo id, when resolved through the cache.
    pub repo_id: Option<String>,
    /// Snapshot revision, when resolved through the cache.
    pub revision: Option<String>,
}

/// Largest Ollama manifest nullprint will parse.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Resolve a model argument: a path, `ollama:NAME[:TAG]`, or a Hugging Face repo id found in
/// the local cache.
pub fn resolve(spec: &str) -> Result<ModelSource> {
    let path = Path::new(spec);
    if let Some(reason) = special_file(path) {
        return Err(Error::NotFound {
            spec: spec.to_owned(),
            reason: reason.into(),
        });
    }
    if path.exists() {
        return resolve_path(spec, path);
    }
    if let Some(name) = spec.strip_prefix("ollama:") {
        return resolve_ollama(spec, name);
    }
    if let Some((repo, rev)) = parse_repo_id(spec) {
        return resolve_hf_cache(spec, repo, rev);
    }
    Err(Error::NotFound {
        spec: spec.to_owned(),
        reason: "no such file or directory, and not a Hugging Face repo id (ORG/NAME)".into(),
    })
}

/// Why a path that is there cannot be read as a model or a file of one: a dangling or looping
/// symlink (not a repo id to look up), or a FIFO, socket or device (reading one can block
/// forever). `None` for a regular file, a directory, or nothing at all.
pub fn special_file(path: &Path) -> Option<&'static str> {
    let link = std::fs::symlink_metadata(path).ok()?;
    match std::fs::metadata(path) {
        Err(_) if link.file_type().is_symlink() => Some("a dangling or looping symlink"),
        Err(_) => None,
        Ok(m) if m.is_file() || m.is_dir() => None,
        Ok(_) => {
            Some("not a regular file or directory (a FIFO, socket or device): refusing to read it")
        }
    }
}

fn parse_repo_id(spec: &str) -> Option<(&str, Option<&str>)> {
    let (repo, rev) = match spec.split_once('@') {
        Some((r, v)) => (r, Some(v)),
        None => (spec, None),
    };
    let mut parts = repo.split('/');
    let (org, name) = (parts.next()?, parts.next()?);
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    (parts.next().is_none() && ok(org) && ok(name) && !org.starts_with('.')).then_some((repo, rev))
}

/// The Hugging Face hub cache directory: `HF_HUB_CACHE`, `HF_HOME/hub`, or
/// `~/.cache/huggingface/hub`.
pub fn hf_cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p).join("hub"));
    }
    let home = std::env::var_os("HOME").filter(|p| !p.is_empty())?;
    Some(
        PathBuf::from(home)
            .join(".cache")
            .join("huggingface")
            .join("hub"),
    )
}

/// A plain file name: not empty, not starting with `.`, only ASCII letters, digits, `-`, `_`
/// and `.` (so it can name a file in a directory without escaping it). Experiment ids, panel
/// model ids and Ollama name parts must be plain.
pub fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Where nullprint keeps real weights (`just models` fetches them there): `$NULLPRINT_MODELS`,
/// or `~/.cache/nullprint-models`. The one default for the binary, the recipes and the tests.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("NULLPRINT_MODELS").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache")
            .join("nullprint-models"),
    }
}

/// Ollama's model store: `$OLLAMA_MODELS`, or `~/.ollama/models`.
pub fn ollama_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OLLAMA_MODELS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").filter(|p| !p.is_empty())?;
    Some(PathBuf::from(home).join(".ollama").join("models"))
}

/// `ollama:NAME[:TAG]` → the manifest's model layer → `blobs/sha256-HEX`, a GGUF.
fn resolve_ollama(spec: &str, name: &str) -> Result<ModelSource> {
    let not_found = |reason: String| Error::NotFound {
        spec: spec.into(),
        reason,
    };
    let (name, tag) = name
        .rsplit_once(':')
        .filter(|(n, _)| !n.is_empty())
        .unwrap_or((name, "latest"));
    let parts: Vec<&str> = name.split('/').collect();
    if parts.is_empty()
        || parts.len() > 2
        || !parts.iter().all(|p| is_plain_name(p))
        || !is_plain_name(tag)
    {
        return Err(not_found(format!(
            "{name:?}:{tag:?} is not an Ollama model name"
        )));
    }
    let store = ollama_dir().ok_or_else(|| {
        not_found("no Ollama directory (OLLAMA_MODELS and HOME are unset)".into())
    })?;
    let mut manifest = store.join("manifests").join("registry.ollama.ai");
    if parts.len() == 1 {
        manifest.push("library");
    }
    for p in &parts {
        manifest.push(p);
    }
    manifest.push(tag);
    if !manifest.is_file() {
        return Err(not_found(format!(
            "no Ollama manifest at {}",
            manifest.display()
        )));
    }
    let len = std::fs::metadata(&manifest)
        .map_err(|e| Error::io(&manifest, e))?
        .len();
    if len > MAX_MANIFEST_BYTES {
        return Err(Error::InvalidJson {
            path: manifest,
            reason: format!("manifest is {len} bytes, over the {MAX_MANIFEST_BYTES} byte cap"),
        });
    }
    let text = std::fs::read(&manifest).map_err(|e| Error::io(&manifest, e))?;
    let v: Value = serde_json::from_slice(&text).map_err(|e| Error::InvalidJson {
        path: manifest.clone(),
        reason: format!("not valid JSON: {e}"),
    })?;
    let digest = v
        .get("layers")
        .and_then(Value::as_array)
        .and_then(|layers| {
            layers.iter().find(|l| {
                l.get("mediaType").and_then(Value::as_str)
                    == Some("application/vnd.ollama.image.model")
            })
        })
        .and_then(|l| l.get("digest"))
        .and_then(Value::as_str)
        .ok_or_else(|| Error::InvalidJson {
            path: manifest.clone(),
            reason: "no layer with mediaType application/vnd.ollama.image.model and a digest"
                .into(),
        })?;
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
    let hex = hex.ok_or_else(|| Error::InvalidJson {
        path: manifest.clone(),
        reason: format!("digest {digest:?} is not sha256:<64 hex>"),
    })?;
    let blob = store.join("blobs").join(format!("sha256-{hex}"));
    if !blob.is_file() {
        return Err(not_found(format!(
            "manifest {} names blob {} which is missing",
            manifest.display(),
            blob.display()
        )));
    }
    let format = format::detect(&blob)?;
    Ok(ModelSource {
        spec: spec.into(),
        name: format!("{name}:{tag}"),
        format,
        files: vec![blob],
        root: store.join("blobs"),
        config: None,
        index: None,
        repo_id: None,
        revision: Some(digest.to_owned()),
    })
}

fn resolve_hf_cache(spec: &str, repo: &str, rev: Option<&str>) -> Result<ModelSource> {
    let cache = hf_cache_dir().ok_or_else(|| Error::NotFound {
        spec: spec.into(),
        reason: "no Hugging Face cache directory (HF_HUB_CACHE, HF_HOME and HOME are unset)".into(),
    })?;
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    if !repo_dir.is_dir() {
        return Err(Error::NotFound {
            spec: spec.into(),
            reason: format!(
                "not a path, and not in the Hugging Face cache ({} does not exist); \
                 download it with `--download` when online",
                repo_dir.display()
            ),
        });
    }
    let wanted = rev.unwrap_or("main");
    let ref_file = repo_dir.join("refs").join(wanted);
    let commit = if ref_file.is_file() {
        std::fs::read_to_string(&ref_file)
            .map_err(|e| Error::io(&ref_file, e))?
            .trim()
            .to_owned()
    } else {
        wanted.to_owned()
    };
    if commit.is_empty() || commit.contains(['/', '\\']) || commit.starts_with('.') {
        return Err(Error::NotFound {
            spec: spec.into(),
            reason: format!("{}: invalid revision {commit:?}", ref_file.display()),
        });
    }
    let snap = repo_dir.join("snapshots").join(&commit);
    if !snap.is_dir() {
        return Err(Error::NotFound {
            spec: spec.into(),
            reason: format!(
                "revision {wanted} ({commit}) has no snapshot at {}",
                snap.display()
            ),
        });
    }
    let mut src = resolve_dir(spec, &snap)?;
    src.name = repo.to_owned();
    src.repo_id = Some(repo.to_owned());
    src.revision = Some(commit);
    Ok(src)
}

fn resolve_path(spec: &str, path: &Path) -> Result<ModelSource> {
    if path.is_dir() {
        return resolve_dir(spec, path);
    }
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if file_name.ends_with(".index.json") {
        let mut src = from_index(spec, path, &root)?;
        src.name = display_name(&root, path);
        return Ok(src);
    }
    let format = format::detect(path)?;
    let files = if format == Format::Gguf {
        gguf_split_siblings(path)?
    } else {
        vec![path.to_path_buf()]
    };
    let config = root.join("config.json");
    Ok(ModelSource {
        spec: spec.into(),
        name: display_name(&root, path),
        format,
        files,
        config: config.is_file().then_some(config),
        root,
        index: None,
        repo_id: None,
        revision: None,
    })
}

/// Name for tables: the parent directory for conventional file names, else the file stem.
fn display_name(root: &Path, path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let generic = [
        "model",
        "pytorch_model",
        "model.safetensors",
        "pytorch_model.bin",
        "consolidated",
    ];
    if generic.iter().any(|g| stem.starts_with(g)) {
        if let Some(dir) = root.file_name().and_then(|s| s.to_str()) {
            return dir.to_owned();
        }
    }
    stem.to_owned()
}

fn resolve_dir(spec: &str, dir: &Path) -> Result<ModelSource> {
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| spec.to_owned());
    for index in [
        "model.safetensors.index.json",
        "pytorch_model.bin.index.json",
    ] {
        let p = dir.join(index);
        if p.is_file() {
            let mut src = from_index(spec, &p, dir)?;
            src.name = name;
            return Ok(src);
        }
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    let with_ext = |ext: &str| -> Vec<PathBuf> {
        entries
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .cloned()
            .collect()
    };
    let config = dir.join("config.json");
    let config = config.is_file().then_some(config);
    let pick = |format: Format, files: Vec<PathBuf>| ModelSource {
        spec: spec.into(),
        name: name.clone(),
        format,
        files,
        root: dir.to_path_buf(),
        config: config.clone(),
        index: None,
        repo_id: None,
        revision: None,
    };
    let st = with_ext("safetensors");
    if !st.is_empty() {
        return Ok(pick(Format::Safetensors, st));
    }
    let gguf = with_ext("gguf");
    if !gguf.is_empty() {
        let first = gguf
            .iter()
            .find(|p| split_part(p).is_none_or(|(i, _)| i == 1))
            .unwrap_or(&gguf[0]);
        if gguf.len() > 1 && split_part(first).is_none() {
            return Err(Error::NotFound {
                spec: spec.into(),
                reason: format!(
                    "{} holds {} GGUF files; name one",
                    dir.display(),
                    gguf.len()
                ),
            });
        }
        return Ok(pick(Format::Gguf, gguf_split_siblings(first)?));
    }
    for (file, format) in [
        ("pytorch_model.bin", Format::Torch),
        ("model.onnx", Format::Onnx),
        ("onnx/model.onnx", Format::Onnx),
        ("model.bin", Format::Ct2),
    ] {
        let p = dir.join(file);
        if p.is_file() {
            let detected = format::detect(&p)?;
            return Ok(pick(
                if format == Format::Ct2 {
                    detected
                } else {
                    format
                },
                vec![p],
            ));
        }
    }
    let onnx = with_ext("onnx");
    if onnx.len() == 1 {
        return Ok(pick(Format::Onnx, onnx));
    }
    Err(Error::NotFound {
        spec: spec.into(),
        reason: format!(
            "{} holds no weights nullprint reads (*.safetensors, *.gguf, pytorch_model.bin, model.onnx, model.bin)",
            dir.display()
        ),
    })
}

/// Read a Hugging Face shard index: `{"weight_map": {tensor: shard}}`.
fn from_index(spec: &str, index: &Path, dir: &Path) -> Result<ModelSource> {
    let len = std::fs::metadata(index)
        .map_err(|e| Error::io(index, e))?
        .len();
    if len > MAX_INDEX_BYTES {
        return Err(Error::InvalidJson {
            path: index.into(),
            reason: format!("index is {len} bytes, over the {MAX_INDEX_BYTES} byte cap"),
        });
    }
    let text = std::fs::read(index).map_err(|e| Error::io(index, e))?;
    let ShardIndex {
        pairs,
        shards: order,
    } = parse_index(index, &text)?;
    let files: Vec<PathBuf> = order.iter().map(|s| dir.join(s)).collect();
    for f in &files {
        if !f.is_file() {
            return Err(Error::NotFound {
                spec: spec.into(),
                reason: format!(
                    "{} names shard {} which is missing",
                    index.display(),
                    f.display()
                ),
            });
        }
    }
    let format = if index
        .to_string_lossy()
        .ends_with("pytorch_model.bin.index.json")
    {
        Format::Torch
    } else {
        Format::Safetensors
    };
    let config = dir.join("config.json");
    Ok(ModelSource {
        spec: spec.into(),
        name: String::new(),
        format,
        files,
        root: dir.to_path_buf(),
        config: config.is_file().then_some(config),
        index: Some((index.to_path_buf(), pairs)),
        repo_id: None,
        revision: None,
    })
}

/// A parsed shard index.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardIndex {
    /// `(tensor, shard)` pairs, in the index's order.
    pub pairs: Vec<(String, String)>,
    /// The shard names, sorted (the reading order).
    pub shards: Vec<String>,
}

/// Parse a Hugging Face shard index (`{"weight_map": {tensor: shard}}`, the bytes of
/// `index`). A shard name must be a relative path that stays inside the model directory.
pub fn parse_index(index: &Path, text: &[u8]) -> Result<ShardIndex> {
    let v: Value = serde_json::from_slice(text).map_err(|e| Error::InvalidJson {
        path: index.into(),
        reason: format!("not valid JSON: {e}"),
    })?;
    let map = v
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::InvalidJson {
            path: index.into(),
            reason: "no \"weight_map\" object".into(),
        })?;
    let mut pairs = Vec::with_capacity(map.len());
    let mut shards = BTreeSet::new();
    let mut order = Vec::new();
    for (tensor, shard) in map {
        let shard = shard.as_str().ok_or_else(|| Error::InvalidJson {
            path: index.into(),
            reason: format!("weight_map[{tensor:?}] is not a file name"),
        })?;
        let p = Path::new(shard);
        if p.is_absolute()
            || p.components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Error::InvalidJson {
                path: index.into(),
                reason: format!(
                    "weight_map[{tensor:?}] = {shard:?} points outside the model directory"
                ),
            });
        }
        if shards.insert(shard.to_owned()) {
            order.push(shard.to_owned());
        }
        pairs.push((tensor.clone(), shard.to_owned()));
    }
    order.sort();
    Ok(ShardIndex {
        pairs,
        shards: order,
    })
}

/// `name-00001-of-00003.gguf` -> Some((1, 3)).
fn split_part(p: &Path) -> Option<(u32, u32)> {
    let stem = p.file_stem()?.to_str()?;
    let (head, total) = stem.rsplit_once("-of-")?;
    let (_, idx) = head.rsplit_once('-')?;
    Some((idx.parse().ok()?, total.parse().ok()?))
}

/// Largest part count of a split GGUF accepted from a file name (llama.cpp's `gguf-split`
/// writes five-digit counts; real models have at most a few hundred parts).
pub const MAX_SPLIT_PARTS: u32 = 10_000;

/// For a split GGUF file name (`NAME-00002-of-00003.gguf`), the names of all its parts in
/// order, spelled with the same digit widths; `None` for any other name.
pub fn split_names(file_name: &str) -> Option<Vec<String>> {
    let (_, total) = split_part(Path::new(file_name))?;
    if total == 0 || total > MAX_SPLIT_PARTS {
        return None;
    }
    let stem = file_name.strip_suffix(".gguf")?;
    let (head, total_s) = stem.rsplit_once("-of-")?;
    let (base, idx) = head.rsplit_once('-')?;
    let (width, total_w) = (idx.len(), total_s.len());
    Some(
        (1..=total)
            .map(|i| format!("{base}-{i:0width$}-of-{total:0total_w$}.gguf"))
            .collect(),
    )
}

/// For a split GGUF (`-00001-of-0000N.gguf`), all N parts in order; else the file itself.
fn gguf_split_siblings(first: &Path) -> Result<Vec<PathBuf>> {
    let names = first
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(split_names);
    let Some(names) = names else {
        return Ok(vec![first.to_path_buf()]);
    };
    let dir = first.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for name in names {
        let f = dir.join(name);
        if !f.is_file() {
            return Err(Error::NotFound {
                spec: first.display().to_string(),
                reason: format!("split GGUF part {} is missing", f.display()),
            });
        }
        files.push(f);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids() {
        assert_eq!(
            parse_repo_id("Qwen/Qwen2.5-0.5B"),
            Some(("Qwen/Qwen2.5-0.5B", None))
        );
        assert_eq!(parse_repo_id("a/b@dev"), Some(("a/b", Some("dev"))));
        assert_eq!(parse_repo_id("a/b/c"), None);
        assert_eq!(parse_repo_id("../x"), None);
    }

    #[test]
    fn ollama_manifest_to_blob() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "ab".repeat(32);
        let m = dir
            .path()
            .join("manifests/registry.ollama.ai/library/tiny/q4");
        std::fs::create_dir_all(m.parent().unwrap()).unwrap();
        let manifest = serde_json::json!({"layers": [
            {"mediaType": "application/vnd.ollama.image.license", "digest": format!("sha256:{}", "cd".repeat(32))},
            {"mediaType": "application/vnd.ollama.image.model", "digest": format!("sha256:{hex}")}]});
        std::fs::write(&m, manifest.to_string()).unwrap();
        std::fs::create_dir_all(dir.path().join("blobs")).unwrap();
        let blob = dir.path().join(format!("blobs/sha256-{hex}"));
        std::fs::write(&blob, b"GGUF\x03\0\0\0").unwrap();
        std::env::set_var("OLLAMA_MODELS", dir.path());
        let src = resolve("ollama:tiny:q4").unwrap();
        assert_eq!(src.files, vec![blob]);
        assert_eq!(src.format, Format::Gguf);
        let err = resolve("ollama:tiny").unwrap_err().to_string();
        assert!(err.contains("latest"), "{err}");
        let err = resolve("ollama:../etc:x").unwrap_err().to_string();
        assert!(err.contains("not an Ollama model name"), "{err}");
        std::env::remove_var("OLLAMA_MODELS");
    }

    #[test]
    fn split_file_names() {
        assert_eq!(split_part(Path::new("m-00002-of-00003.gguf")), Some((2, 3)));
        assert_eq!(split_part(Path::new("model.gguf")), None);
        assert_eq!(
            split_names("m-q4-00002-of-003.gguf").unwrap(),
            [
                "m-q4-00001-of-003.gguf",
                "m-q4-00002-of-003.gguf",
                "m-q4-00003-of-003.gguf"
            ]
        );
        assert_eq!(split_names("model.gguf"), None);
        assert_eq!(split_names("m-00001-of-99999999.gguf"), None);
    }
}
