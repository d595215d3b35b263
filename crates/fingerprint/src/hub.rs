//! Download a model from the Hugging Face hub into the standard cache (when online).
//!
//! Only what a fingerprint needs is fetched: `config.json`, the shard index, and the weight
//! files (safetensors if the repo has them, else PyTorch `.bin`, else a single GGUF). Files land
//! in the standard cache layout (`models--ORG--NAME/snapshots/<rev>/`), so other tools reuse
//! them and [`crate::source::resolve`] then reads them offline.

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Repo, RepoType};

use crate::error::{Error, Result};
use crate::source::{hf_cache_dir, resolve, ModelSource};

/// Download `repo_id` at `revision` (default `main`) into the HF cache and resolve it.
pub fn download(repo_id: &str, revision: Option<&str>) -> Result<ModelSource> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::NotFound {
        spec: repo_id.to_owned(),
        reason: format!("download from the Hugging Face hub failed while {what}: {e} (offline? set HF_ENDPOINT or copy the snapshot into the cache)"),
    }
    };
    let cache = hf_cache_dir().ok_or_else(|| {
        fail(
            "locating the cache",
            &"HF_HUB_CACHE, HF_HOME and HOME are unset",
        )
    })?;
    let api = ApiBuilder::new()
        .with_cache_dir(cache)
        .with_progress(false)
        .build()
        .map_err(|e| fail("starting the client", &e))?;
    let rev = revision.unwrap_or("main").to_owned();
    let repo = api.repo(Repo::with_revision(
        repo_id.to_owned(),
        RepoType::Model,
        rev.clone(),
    ));
    let info = repo
        .info()
        .map_err(|e| fail("listing the repository", &e))?;
    let names: Vec<String> = info.siblings.iter().map(|s| s.rfilename.clone()).collect();
    for file in pick_files(&names) {
        repo.get(&file)
            .map_err(|e| fail(&format!("fetching {file}"), &e))?;
    }
    let spec = if revision.is_some() {
        format!("{repo_id}@{rev}")
    } else {
        repo_id.to_owned()
    };
    resolve(&spec)
}

/// The files of a repository a fingerprint needs, by preference of format.
pub fn pick_files(names: &[String]) -> Vec<String> {
    let top = |n: &String| !n.contains('/');
    let ends = |suffix: &str| -> Vec<String> {
        names
            .iter()
            .filter(|n| top(n) && n.ends_with(suffix))
            .cloned()
            .collect()
    };
    let mut out: Vec<String> = names
        .iter()
        .filter(|n| *n == "config.json")
        .cloned()
        .collect();
    let safetensors = ends(".safetensors");
    if !safetensors.is_empty() {
        out.extend(ends("model.safetensors.index.json"));
        out.extend(safetensors);
        return out;
    }
    let bins: Vec<String> = names
        .iter()
        .filter(|n| top(n) && n.starts_with("pytorch_model") && n.ends_with(".bin"))
        .cloned()
        .collect();
    if !bins.is_empty() {
        out.extend(ends("pytorch_model.bin.index.json"));
        out.extend(bins);
        return out;
    }
    out.extend(ends(".gguf").into_iter().take(1));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn picks_only_what_a_fingerprint_needs() {
        let names: Vec<String> = [
            "config.json",
            "README.md",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "pytorch_model.bin",
            "onnx/model.onnx",
            "tokenizer.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            super::pick_files(&names),
            vec![
                "config.json",
                "model.safetensors.index.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors"
            ]
        );
        let bins: Vec<String> = ["config.json", "pytorch_model.bin"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            super::pick_files(&bins),
            vec!["config.json", "pytorch_model.bin"]
        );
    }
}
