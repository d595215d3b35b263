//! Shared helpers: locating real models (skipping loudly when absent) and reading reference
//! JSON files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use null::curves::Curves;

pub use testkit::real_model as model_file;

/// A JSON file under tests/data.
pub fn data(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Curves from a JSON object `{role: [values]}`.
pub fn curves_from_json(model: &str, v: &serde_json::Value) -> Curves {
    let roles: BTreeMap<String, Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    Curves::new(model, roles).unwrap()
}

/// |a - b| <= tol, with a message.
#[track_caller]
pub fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol,
        "{what}: {a} vs {b} (|diff| {:e} > {tol:e})",
        (a - b).abs()
    );
}
