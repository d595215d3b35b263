//! End to end: a published-style similarity matrix CSV plus labels (both forms) through the
//! matrix null, the many-comparisons report and the held-out threshold.

use null::all_pairs::{report, MatrixNull};
use null::labels::{Labels, Relation};
use null::nulls::panel::{test, ObservedContext, PanelOptions};
use null::nulls::published::SimilarityMatrix;
use null::roc::{held_out, roc_table, Grouping, ThresholdRule};
use null::table::PairTable;

/// Eight models in four families; related pairs score ~0.99, unrelated same-depth ~0.85,
/// others ~0.4.
fn matrix_csv() -> (String, Vec<(&'static str, &'static str, usize)>) {
    let models = vec![
        ("llama-7b", "llama", 32),
        ("vicuna-7b", "llama", 32),
        ("mistral-7b", "mistral", 32),
        ("zephyr-7b", "mistral", 32),
        ("qwen-14b", "qwen", 48),
        ("qwen-14b-chat", "qwen", 48),
        ("pangu", "pangu", 48),
        ("bert", "bert", 12),
    ];
    let mut csv = String::from("id");
    for m in &models {
        csv.push(',');
        csv.push_str(m.0);
    }
    csv.push('\n');
    for (i, a) in models.iter().enumerate() {
        csv.push_str(a.0);
        for (j, b) in models.iter().enumerate() {
            let v = if i == j {
                1.0
            } else if a.1 == b.1 {
                0.99
            } else if a.2 == b.2 {
                0.80 + 0.01 * ((i + j) % 7) as f64
            } else {
                0.30 + 0.02 * ((i * j) % 5) as f64
            };
            csv.push_str(&format!(",{v}"));
        }
        csv.push('\n');
    }
    (csv, models)
}

#[test]
fn matrix_null_with_model_labels() {
    let (csv, models) = matrix_csv();
    let m = SimilarityMatrix::from_reader(csv.as_bytes(), "published.csv").unwrap();
    let mut labels_csv = String::from("model,root,layers\n");
    for (id, root, l) in &models {
        labels_csv.push_str(&format!("{id},{root},{l}\n"));
    }
    let labels = Labels::from_reader(labels_csv.as_bytes(), "labels.csv").unwrap();
    let t = PairTable::from_matrix(&m, &labels).unwrap();
    assert_eq!(t.counts(), (3, 25, 0));
    let r = test(
        &t,
        0.927,
        &PanelOptions {
            thresholds: vec![0.7, 0.927],
            context: ObservedContext {
                layers: Some((48, 48)),
                families: None,
                kinds: None,
            },
            exclude: vec!["pangu".into()],
            ..Default::default()
        },
    )
    .unwrap();
    // pangu's 6 unrelated pairs... 7 pairs, all unrelated, are excluded by request.
    assert_eq!(r.excluded.by_request, 7);
    assert_eq!(r.null.n, 18);
    assert_eq!(r.null.exceed, 0);
    assert!((r.null.p - 1.0 / 19.0).abs() < 1e-15);
    assert!(r.null.log10_p < -1.27);
    assert_eq!(r.excluded.related_pairs.len(), 3);
    assert_eq!(r.matched_stratum.as_deref(), Some("same depth"));
    let json = serde_json::to_value(&r).unwrap();
    for k in ["n", "exceed", "p", "log10_p", "interval"] {
        assert!(json["null"].get(k).is_some(), "{k}");
    }
    assert!(json["notes"][0]
        .as_str()
        .unwrap()
        .contains("not independent"));
    // The FPR at 0.7 counts the same-depth unrelated pairs.
    let same_depth = r.strata.iter().find(|s| s.name == "same depth").unwrap();
    assert_eq!(r.fpr[0].count, same_depth.result.n);
    assert_eq!(r.fpr[1].count, 0);
}

#[test]
fn pair_labels_many_comparisons_and_held_out_threshold() {
    let (csv, models) = matrix_csv();
    let m = SimilarityMatrix::from_reader(csv.as_bytes(), "published.csv").unwrap();
    // Per-pair labels; one pair left unknown.
    let mut labels_csv = String::from("a,b,label\n");
    for (i, a) in models.iter().enumerate() {
        for b in models.iter().skip(i + 1) {
            let label = if (a.0, b.0) == ("pangu", "bert") {
                "unknown"
            } else if a.1 == b.1 {
                "related"
            } else {
                "unrelated"
            };
            labels_csv.push_str(&format!("{},{},{label}\n", a.0, b.0));
        }
    }
    let labels = Labels::from_reader(labels_csv.as_bytes(), "pairs.csv").unwrap();
    assert_eq!(labels.relation("vicuna-7b", "llama-7b"), Relation::Related);
    let t = PairTable::from_matrix(&m, &labels).unwrap();
    assert_eq!(t.counts(), (3, 24, 1));
    let rep = report(&t, &MatrixNull::LeaveModelsOut).unwrap();
    assert_eq!(rep.rows.len(), 28);
    for row in &rep.rows {
        assert!(row.p > 0.0 && row.p <= 1.0 && row.q_bh >= row.p && row.p_holm >= row.p);
        assert!(row.log10_p <= 0.0);
    }
    let roc = roc_table(&t).unwrap();
    assert_eq!(roc.auc, 1.0);
    let h = held_out(&t, ThresholdRule::Fpr(0.0), Grouping::Model).unwrap();
    assert_eq!(h.fpr.count, 0);
    assert_eq!(h.tpr.as_ref().unwrap().rate, 1.0);
    // Family blocks from pair labels: four blocks, six block pairs minus none.
    let r = test(&t, 0.95, &PanelOptions::default()).unwrap();
    assert_eq!(r.excluded.unknown, 1);
    let fb = r.family_block.unwrap();
    assert!(fb.n <= 10 && fb.n >= 5, "{}", fb.n);
}
