//! The panel nullprint ships: the baseline fingerprints of `baselines/` (real models,
//! fingerprinted by nullprint, with lineage labels in `baselines/index.toml`), compiled into the
//! library so that an installed binary can calibrate a comparison without the source tree.
//!
//! The embedded files are the committed ones at build time (a test checks they still match
//! the index); `nullprint compare --panel DIR` uses another panel instead.

use std::path::Path;

use fingerprint::StdRows;
use null::curves::{CurveOptions, Curves};
use null::labels::Labels;

use crate::error::{Error, Result};
use crate::index::PanelIndex;

/// How the built-in panel is named in reports and errors.
pub const NAME: &str = "nullprint's built-in panel (baselines/)";

/// The index: lineage labels, weight hashes and sources of every model.
pub const INDEX: &str = include_str!("../../../baselines/index.toml");

/// Each model's id and fingerprint JSON, in index order.
pub const FINGERPRINTS: &[(&str, &str)] = &[
    (
        "all-minilm-l6-v2",
        include_str!("../../../baselines/all-minilm-l6-v2.json"),
    ),
    (
        "all-minilm-l6-v2-int8",
        include_str!("../../../baselines/all-minilm-l6-v2-int8.json"),
    ),
    (
        "paraphrase-minilm-l3-v2",
        include_str!("../../../baselines/paraphrase-minilm-l3-v2.json"),
    ),
    (
        "all-mpnet-base-v2",
        include_str!("../../../baselines/all-mpnet-base-v2.json"),
    ),
    (
        "nomic-embed-text-v1.5",
        include_str!("../../../baselines/nomic-embed-text-v1.5.json"),
    ),
    (
        "antiberty",
        include_str!("../../../baselines/antiberty.json"),
    ),
    (
        "smollm2-135m-instruct",
        include_str!("../../../baselines/smollm2-135m-instruct.json"),
    ),
    (
        "gemma3-270m",
        include_str!("../../../baselines/gemma3-270m.json"),
    ),
    (
        "qwen2.5-coder-0.5b-instruct-awq",
        include_str!("../../../baselines/qwen2.5-coder-0.5b-instruct-awq.json"),
    ),
    (
        "qwen2.5-coder-1.5b-instruct",
        include_str!("../../../baselines/qwen2.5-coder-1.5b-instruct.json"),
    ),
    (
        "whisper-base",
        include_str!("../../../baselines/whisper-base.json"),
    ),
];

/// The built-in panel's curves (named by panel id) and lineage labels.
pub fn load(opts: &CurveOptions) -> Result<(Vec<Curves>, Labels)> {
    let index = PanelIndex::parse(INDEX, Path::new(NAME))?;
    let labels = index.labels()?;
    let mut curves = Vec::with_capacity(FINGERPRINTS.len());
    for (id, json) in FINGERPRINTS {
        let origin = Path::new(NAME).join(format!("{id}.json"));
        let rows =
            StdRows::from_json_slice(json.as_bytes()).map_err(|source| Error::Fingerprint {
                what: origin.display().to_string(),
                source,
            })?;
        let mut c = Curves::from_std_rows(&rows, opts)
            .map_err(Error::statistic(format!("{}: curves", origin.display())))?;
        c.model = (*id).to_owned();
        curves.push(c);
    }
    Ok((curves, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use null::curves::StackChoice;

    #[test]
    fn the_embedded_panel_is_the_committed_one() {
        let baselines = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../baselines");
        let index = PanelIndex::load(&baselines.join("index.toml")).unwrap();
        let ids: Vec<&str> = index.model.iter().map(|m| m.id.as_str()).collect();
        let embedded: Vec<&str> = FINGERPRINTS.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids, embedded,
            "regenerate FINGERPRINTS from baselines/index.toml"
        );
        for (id, json) in FINGERPRINTS {
            let file = std::fs::read_to_string(baselines.join(format!("{id}.json"))).unwrap();
            assert_eq!(&file, json, "{id}");
        }
        let opts = CurveOptions {
            roles: null::curves::RoleSel::attention(),
            stack: StackChoice::Auto,
            ddof: 0,
        };
        let (curves, labels) = load(&opts).unwrap();
        assert_eq!(curves.len(), ids.len());
        for id in ids {
            assert!(labels.model(id).is_some(), "{id}");
        }
    }
}
