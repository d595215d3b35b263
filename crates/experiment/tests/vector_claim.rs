/*!
The vector claim (experiments/solar-glm.toml) against an independent numpy computation on the
same weights: `scripts/reference_vectors.py` read every model's normalisation weights straight
from the weight files with its own name patterns and computed, in float64, the per-layer raw
and centred cosines and the claim's sigma (committed as `tests/data/solar-glm-numpy.json`).
Here the experiment is reproduced from the committed vector fingerprints and every number of
its per-layer and sigma tables must agree; every vector's SHA-256 must equal numpy's hash of
the weights' values, and the weight files numpy read must be the ones the index pins.
*/

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use report::model::{Cell, Table};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn numpy() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/solar-glm-numpy.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn num(c: &Cell) -> f64 {
    match c {
        Cell::Number(x) => *x,
        other => panic!("expected a number, got {other:?}"),
    }
}

fn txt(c: &Cell) -> &str {
    match c {
        Cell::Text(s) => s,
        other => panic!("expected text, got {other:?}"),
    }
}

fn table<'a>(tables: &'a [Table], name: &str) -> &'a Table {
    tables.iter().find(|t| t.name == name).unwrap()
}

/// Agreement to rounding: both sides are float64 sums over at most 1,536 elements.
const TOL: f64 = 1e-12;

#[test]
fn every_number_agrees_with_numpy_on_the_same_weights() {
    let np = numpy();
    let done = experiment::vector_claim::reproduce(&workspace().join("experiments/solar-glm.toml"))
        .unwrap();
    let tables = &done.report.tables;

    // Per layer: (pair, role, layer) -> [raw, centred].
    let mut ours: BTreeMap<(String, String, u32), (f64, f64)> = BTreeMap::new();
    for row in &table(tables, "per-layer").rows {
        ours.insert(
            (
                txt(&row[0]).to_owned(),
                txt(&row[2]).to_owned(),
                num(&row[3]) as u32,
            ),
            (num(&row[4]), num(&row[5])),
        );
    }
    let mut checked = 0;
    for p in np["pairs"].as_array().unwrap() {
        let (pair, role) = (p["pair"].as_str().unwrap(), p["role"].as_str().unwrap());
        for (i, layer) in p["layers"].as_array().unwrap().iter().enumerate() {
            let key = (
                pair.to_owned(),
                role.to_owned(),
                layer.as_u64().unwrap() as u32,
            );
            let (raw, centred) = ours[&key];
            let want_raw = p["cosine"]["per_layer"][i].as_f64().unwrap();
            let want_c = p["centred-cosine"]["per_layer"][i].as_f64().unwrap();
            assert!(
                (raw - want_raw).abs() < TOL,
                "{key:?}: raw {raw} vs numpy {want_raw}"
            );
            assert!(
                (centred - want_c).abs() < TOL,
                "{key:?}: centred {centred} vs numpy {want_c}"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        ours.len(),
        "numpy and the report cover the same layers"
    );
    assert!(checked > 150, "{checked}");

    // The claim's arithmetic: same-layer mean, baseline mean and sd, sigma.
    let sigma = table(tables, "claim-sigma");
    for p in np["pairs"].as_array().unwrap() {
        for (m, label) in [
            ("cosine", "raw cosine"),
            ("centred-cosine", "centred cosine (Pearson r)"),
        ] {
            let row = sigma
                .rows
                .iter()
                .find(|r| {
                    txt(&r[0]) == p["pair"].as_str().unwrap()
                        && txt(&r[2]) == p["role"].as_str().unwrap()
                        && txt(&r[3]) == label
                })
                .unwrap();
            let want = &p[m];
            for (col, key) in [(4, "mean"), (5, "baseline_mean"), (6, "baseline_sd")] {
                let (got, w) = (num(&row[col]), want[key].as_f64().unwrap());
                assert!(
                    (got - w).abs() < TOL,
                    "{} {m} {key}: {got} vs {w}",
                    p["pair"]
                );
            }
            let (got, w) = (num(&row[8]), want["sigma"].as_f64().unwrap());
            assert!(
                (got - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{} {m} sigma: {got} vs {w}",
                p["pair"]
            );
        }
    }
}

#[test]
fn committed_vectors_are_the_weights_values() {
    let np = numpy();
    let index =
        experiment::PanelIndex::load(&workspace().join("baselines/vectors/index.toml")).unwrap();
    // numpy read the files the index pins.
    for m in &index.model {
        let src = &np["sources"][&m.id];
        assert_eq!(src["source"], "weights", "{}", m.id);
        assert_eq!(src["file_sha256"].as_str().unwrap(), m.sha256, "{}", m.id);
    }
    let mut checked = 0;
    for (id, roles) in np["vector_sha256"].as_object().unwrap() {
        let path = if id.contains(".noise-") {
            workspace().join(format!("baselines/vectors/controls/{id}.json"))
        } else {
            workspace().join(format!("baselines/vectors/{id}.json"))
        };
        let fp =
            fingerprint::Fingerprint::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (role, layers) in roles.as_object().unwrap() {
            for (layer, sha) in layers.as_object().unwrap() {
                let layer: u32 = layer.parse().unwrap();
                let v = fp
                    .vectors
                    .iter()
                    .find(|v| {
                        v.role.to_string() == *role
                            && v.layer == Some(layer)
                            && v.stack != Some(fingerprint::roles::Stack::Decoder)
                    })
                    .unwrap_or_else(|| panic!("{id}: no {role} vector at layer {layer}"));
                assert_eq!(v.sha256, sha.as_str().unwrap(), "{id} {role} {layer}");
                v.values().unwrap();
                checked += 1;
            }
        }
    }
    assert!(checked > 250, "{checked}");
}
