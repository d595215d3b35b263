//! The shipped manifests parse and check, and `open-llms.toml` has the breadth issue 17 asks
//! for: at least 150 checkpoints, 12 to 80+ layers, 20 unrelated roots, 15 of exactly 48.

use std::collections::BTreeSet;
use std::path::Path;

use panel::{Manifest, Relation};

#[test]
fn the_open_llm_panel_is_broad_enough() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../panels/open-llms.toml");
    let m = Manifest::load(&path).unwrap();
    let roots: BTreeSet<&str> = m.model.iter().map(|e| e.root.as_str()).collect();
    let at48 = m.model.iter().filter(|e| e.layers == 48).count();
    let min = m.model.iter().map(|e| e.layers).min().unwrap();
    let max = m.model.iter().map(|e| e.layers).max().unwrap();
    assert!(m.model.len() >= 150, "{} checkpoints", m.model.len());
    assert!(roots.len() >= 20, "{} roots", roots.len());
    assert!(at48 >= 15, "{at48} of 48 layers");
    assert!(min <= 12 && max >= 80, "{min}..{max}");
    // Related and unrelated pairs at 48 layers both exist.
    let roots48: BTreeSet<&str> = m
        .model
        .iter()
        .filter(|e| e.layers == 48)
        .map(|e| e.root.as_str())
        .collect();
    assert!(roots48.len() >= 5 && roots48.len() < at48, "{roots48:?}");
    for rel in [
        Relation::Base,
        Relation::FineTune,
        Relation::Quantized,
        Relation::Distilled,
    ] {
        assert!(m.model.iter().any(|e| e.relation == rel), "{rel:?}");
    }
}
