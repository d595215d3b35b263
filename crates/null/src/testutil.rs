//! Builders for synthetic fingerprints and curves used by the unit tests.

use std::collections::BTreeMap;

use fingerprint::config::ConfigSummary;
use fingerprint::format::Format;
use fingerprint::roles::Stack;
use fingerprint::schema::{SCHEMA, SCHEMA_VERSION};
use fingerprint::{Expert, Fingerprint, ModelInfo, Role, TensorRow, TensorStats};

use crate::curves::Curves;

/// A row of 100 elements with the given std.
pub fn row(
    stack: Option<Stack>,
    layer: u32,
    role: Role,
    expert: Option<Expert>,
    std: f64,
) -> TensorRow {
    TensorRow {
        stack,
        layer: Some(layer),
        tensor: format!("l{layer}.{role}"),
        role,
        expert,
        dtype: "F32".into(),
        stats: TensorStats {
            numel: 100,
            mean: Some(0.0),
            std: Some(std),
            min: Some(-1.0),
            max: Some(1.0),
            abs_mean: Some(std),
            l2: Some(std * 10.0),
            nan: 0,
            inf: 0,
        },
        se: None,
    }
}

/// A fingerprint named `name` holding `rows`.
pub fn fingerprint(name: &str, rows: Vec<TensorRow>) -> Fingerprint {
    Fingerprint {
        schema: SCHEMA.into(),
        schema_version: SCHEMA_VERSION,
        model: ModelInfo {
            name: name.into(),
            source: name.into(),
            repo_id: None,
            revision: None,
            format: Format::Safetensors,
            architecture: None,
            config: ConfigSummary::default(),
            files: Vec::new(),
            nullprint_version: "test".into(),
            command: Vec::new(),
            derived: None,
        },
        nonfinite: false,
        tensors: rows,
        skipped: Vec::new(),
        warnings: Vec::new(),
        vectors: Vec::new(),
        sampling: None,
    }
}

/// Curves with the given role keys and values.
pub fn curves(name: &str, roles: &[(&str, &[f64])]) -> Curves {
    Curves::new(
        name,
        roles
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect::<BTreeMap<_, _>>(),
    )
    .expect("valid test curves")
}
