/*!
CTranslate2 `model.bin` through the whole path (`source::resolve` → `engine::plan` /
`engine::fingerprint`) on the real whisper-base file: the encoder and decoder stacks, the
fused self-attention q/k/v split and the cross-attention roles, and every row's statistics
against an independent numpy computation on the same F16 values
(`scripts/reference_ct2.py`, committed as `tests/data/ct2/whisper-base.json`).
*/

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use fingerprint::engine::{self, Options};
use fingerprint::roles::{Role, Stack};
use fingerprint::source;

fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / a.abs().max(b.abs())
    }
}

#[test]
fn whisper_base_roles_and_stats_match_numpy() {
    let Some(path) = common::real_model(
        "whisper_base_roles_and_stats_match_numpy",
        "whisper-base",
        "model.bin",
    ) else {
        return;
    };
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ct2/whisper-base.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let expected = expected["tensors"].as_object().unwrap();
    let src = source::resolve(path.parent().unwrap().to_str().unwrap()).unwrap();
    assert_eq!(src.format, fingerprint::format::Format::Ct2);

    // The plan: 6 encoder and 6 decoder layers, self-attention split into q/k/v.
    let plan = engine::plan(&src).unwrap();
    assert_eq!(plan.architecture.as_deref(), Some("WhisperSpec"));
    assert_eq!(
        (plan.config.layers, plan.config.encoder_layers),
        (Some(6), Some(6))
    );
    assert_eq!(plan.config.heads, Some(8));
    let keys: BTreeSet<(Option<Stack>, Option<u32>, String)> = plan
        .tensors
        .iter()
        .flat_map(|t| t.assignments.iter())
        .map(|a| (a.key.stack, a.key.layer, a.key.role.to_string()))
        .collect();
    for layer in 0..6 {
        for role in [
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_o",
            "mlp_up",
            "mlp_down",
            "attn_norm",
        ] {
            for stack in [Stack::Encoder, Stack::Decoder] {
                assert!(
                    keys.contains(&(Some(stack), Some(layer), role.to_string())),
                    "{stack} layer {layer} {role}"
                );
            }
        }
        for role in ["xattn_q", "xattn_k", "xattn_v", "xattn_o", "xattn_norm"] {
            assert!(keys.contains(&(Some(Stack::Decoder), Some(layer), role.to_string())));
            assert!(!keys.contains(&(Some(Stack::Encoder), Some(layer), role.to_string())));
        }
    }

    let fp = engine::fingerprint(&src, &Options::default()).unwrap();
    let mut checked = 0;
    let mut worst = 0.0f64;
    for row in &fp.tensors {
        let split = format!("{}#{}", row.tensor, row.role);
        let want = expected
            .get(&split)
            .or_else(|| expected.get(&row.tensor))
            .unwrap_or_else(|| panic!("{} ({}) has no reference", row.tensor, row.role));
        assert_eq!(row.stats.numel, want["numel"].as_u64().unwrap(), "{split}");
        let want_std = want["std"].as_f64().unwrap();
        let std = row.stats.std.unwrap();
        let e = rel(std, want_std);
        // The zero k bias has std exactly 0 in both.
        assert!(e < 1e-9, "{split}: std {std} vs numpy {want_std} ({e:e})");
        let mean = row.stats.mean.unwrap();
        let want_mean = want["mean"].as_f64().unwrap();
        assert!(
            (mean - want_mean).abs() <= 1e-9 * want_std.max(want_mean.abs()),
            "{split}: mean {mean} vs {want_mean}"
        );
        worst = worst.max(e);
        checked += 1;
    }
    // 203 F16 tensors, of which 12 self-attention and 6 cross-attention linears (weight and
    // bias each) are split: 203 + 12·2·2 + 6·2·1 = 263 rows.
    assert_eq!(checked, 263);
    // The 9 integer scalars are skipped, not fatal.
    assert_eq!(fp.skipped.len(), 9, "{:?}", fp.skipped);
    eprintln!("whisper-base: {checked} rows, worst relative std error {worst:e}");
    // Published first-layer q std (models.md): encoder 0.0255, decoder self-attention 0.0395.
    let q = |stack| {
        fp.tensors
            .iter()
            .find(|r| r.role == Role::AttnQ && r.layer == Some(0) && r.stack == Some(stack))
            .unwrap()
            .stats
            .std
            .unwrap()
    };
    assert!((q(Stack::Encoder) - 0.0255).abs() < 5e-5);
    assert!((q(Stack::Decoder) - 0.0395).abs() < 5e-5);
}
