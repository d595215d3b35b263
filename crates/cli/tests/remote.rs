//! `nullprint fingerprint hf://…` and `https://…` against a loopback hub: the same rows as
//! the local file, the hub endpoint and token taken from the environment, and the token in
//! no output.

use std::process::{Command, Output};

use testkit::hub::{Fault, Server};

const TOKEN: &str = "hf_cli_loopback_secret";
const COMMIT: &str = "89abcdef0123456789abcdef0123456789abcdef";

fn nullprint(args: &[&str], hub: &Server, home: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nullprint"))
        .args(args)
        .env("HF_ENDPOINT", hub.url())
        .env_remove("HF_TOKEN")
        .env_remove("HF_TOKEN_PATH")
        .env("HF_HOME", home)
        .output()
        .expect("run nullprint")
}

/// A one-layer safetensors model with q/k/v/o and an MLP (which a remote read skips).
fn model(dir: &std::path::Path) -> std::path::PathBuf {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (i, p) in [
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.up_proj",
    ]
    .iter()
    .enumerate()
    {
        let start = data.len();
        for j in 0..4096 {
            data.extend_from_slice(
                &(((i * 7919 + j * 104729) % 1000) as f32 * 1e-4 - 0.05).to_le_bytes(),
            );
        }
        header.insert(
            format!("model.layers.0.{p}.weight"),
            serde_json::json!({"dtype": "F32", "shape": [64, 64], "data_offsets": [start, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend(h);
    bytes.extend(data);
    let p = dir.join("model.safetensors");
    std::fs::write(&p, bytes).unwrap();
    p
}

fn rows(json: &[u8]) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(json).expect("fingerprint JSON");
    v["tensors"].clone()
}

#[test]
fn fingerprint_from_the_hub_matches_the_local_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = model(dir.path());
    let hub = Server::start();
    hub.repo("org/one", COMMIT, &[("model.safetensors", path.clone())]);
    // The token file the hub's tools write, under HF_HOME.
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let o = nullprint(
        &["fingerprint", "hf://org/one", "--no-cache"],
        &hub,
        dir.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let local = nullprint(
        &[
            "fingerprint",
            path.to_str().unwrap(),
            "--roles",
            "attn_q,attn_k,attn_v,attn_o",
            "--no-cache",
        ],
        &hub,
        dir.path(),
    );
    assert!(local.status.success());
    assert_eq!(rows(&o.stdout), rows(&local.stdout));
    assert_eq!(rows(&o.stdout).as_array().unwrap().len(), 4);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(COMMIT) && out.contains("\"ranges\""), "{out}");
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN));
    assert!(err.contains("in ranges"), "{err}");
    assert!(hub
        .requests()
        .iter()
        .all(|q| q.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))));
}

#[test]
fn a_persistent_server_fault_is_a_one_line_error_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = model(dir.path());
    let hub = Server::start();
    hub.repo("org/one", COMMIT, &[("model.safetensors", path)]);
    hub.fault(Fault::NoContentRange, 1, 1000);
    let o = Command::new(env!("CARGO_BIN_EXE_nullprint"))
        .args(["fingerprint", "hf://org/one", "--no-cache"])
        .env("HF_ENDPOINT", hub.url())
        .env("HF_TOKEN", TOKEN)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("/org/one/resolve/") && err.contains("tensor model.layers.0."),
        "{err}"
    );
    assert!(err.contains("without a Content-Range"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
}
