//! The published GraphNet panel, read from the project's shared copy (never committed): the
//! reader's counts, the lineage rules, and the published measure against an independent
//! straightforward recomputation from the CSV. Skips with a printed reason where the data is
//! absent (CI has no ../shared).

use std::collections::BTreeMap;
use std::path::PathBuf;

use null::labels::Relation;
use null::lineage_rules::{self, Rule};
use null::measure::Measure;
use null::published_panel::{self as published, Kind, PublishedPanel};
use null::table::PairTable;

/// `../shared/published-data/graphnet` relative to the workspace root.
fn graphnet_dir(test: &str) -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/published-data/graphnet");
    if dir.join("attention_std_per_layer.csv").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {test}: {} not found (published data is not committed; see \
             scripts/published-data.sh)",
            dir.display()
        );
        None
    }
}

fn panel(test: &str) -> Option<PublishedPanel> {
    let dir = graphnet_dir(test)?;
    Some(
        published::read_graphnet_dir(&dir, &["attn_q", "attn_k", "attn_v", "attn_o"])
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

#[test]
fn graphnet_reads_as_a_panel() {
    let Some(p) = panel("graphnet_reads_as_a_panel") else {
        return;
    };
    assert_eq!(p.rows, 16_959);
    assert_eq!(p.provenance.ddof, 1);
    assert_eq!(p.provenance.decimals, Some(3));
    let six = p.curves.iter().filter(|c| c.layers() == 6).count();
    // 3 x 607 opus-mt curves minus the init-like ones, and a few others.
    assert!(six > 1800, "{six} six-layer curves");
    // The randomly initialised curves are found and none survive.
    assert!(!p.excluded.init_like.is_empty());
    assert!(p.curves.iter().all(|c| !published::is_init_like(&c.curves)));
    let opus_enc = p
        .curves
        .iter()
        .filter(|c| c.model.contains("opus-mt-") && c.kind == Kind::Encoder)
        .count();
    assert!((600..=607).contains(&opus_enc), "{opus_enc}");
    eprintln!(
        "graphnet: {} curves kept; excluded {:?} ({} init-like)",
        p.curves.len(),
        (
            p.excluded.missing_roles,
            p.excluded.layer_gaps,
            p.excluded.too_short,
            p.excluded.heuristic_not_real
        ),
        p.excluded.init_like.len()
    );
}

#[test]
fn lineage_rules_label_the_published_panel() {
    let Some(p) = panel("lineage_rules_label_the_published_panel") else {
        return;
    };
    let rl = lineage_rules::label(&p.curves).unwrap();
    let ids: Vec<&str> = p.curves.iter().map(|c| c.curves.model.as_str()).collect();
    let counts = lineage_rules::count_pairs(&rl, &ids);
    let n = ids.len() as u64;
    assert_eq!(counts.values().sum::<u64>(), n * (n - 1) / 2);
    let opus = counts[&(
        Rule::OpusMtPairAssumed,
        Rule::OpusMtPairAssumed,
        Relation::Unrelated,
    )];
    assert!(opus > 1_000_000, "{opus}");
    // Every pair touching an undecided model is unknown, except curves of one model.
    for ((a, b, rel), c) in &counts {
        if *a == Rule::Unknown || *b == Rule::Unknown {
            assert_ne!(*rel, Relation::Unrelated, "{a:?} {b:?} {c}");
        }
    }
}

/// The published measure written out plainly, independent of the crate's kernels: per role,
/// z-score with the population std, interpolate the shorter curve linearly onto the longer
/// curve's positions i/(L-1), Pearson r; the mean over roles.
fn plain_honestagi(a: &BTreeMap<String, Vec<f64>>, b: &BTreeMap<String, Vec<f64>>) -> f64 {
    fn z(v: &[f64]) -> Vec<f64> {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let s = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt();
        v.iter().map(|x| (x - m) / s).collect()
    }
    fn stretch(v: &[f64], n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let pos = i as f64 / (n - 1) as f64 * (v.len() - 1) as f64;
                let lo = pos.floor() as usize;
                let hi = (lo + 1).min(v.len() - 1);
                let f = pos - lo as f64;
                v[lo] * (1.0 - f) + v[hi] * f
            })
            .collect()
    }
    fn r(x: &[f64], y: &[f64]) -> f64 {
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for (p, q) in x.iter().zip(y) {
            sxy += (p - mx) * (q - my);
            sxx += (p - mx) * (p - mx);
            syy += (q - my) * (q - my);
        }
        sxy / (sxx * syy).sqrt()
    }
    let mut sum = 0.0;
    for (role, x) in a {
        let (x, y) = (z(x), z(&b[role]));
        let n = x.len().max(y.len());
        let (x, y) = (
            if x.len() < n { stretch(&x, n) } else { x },
            if y.len() < n { stretch(&y, n) } else { y },
        );
        sum += r(&x, &y);
    }
    sum / a.len() as f64
}

#[test]
fn published_scores_agree_with_an_independent_recomputation() {
    let Some(p) = panel("published_scores_agree_with_an_independent_recomputation") else {
        return;
    };
    // 40 curves of every depth present (all when fewer): same- and different-depth pairs.
    let mut by_depth: BTreeMap<usize, usize> = BTreeMap::new();
    let chosen: Vec<_> = p
        .curves
        .iter()
        .filter(|c| {
            let k = by_depth.entry(c.layers()).or_default();
            *k += 1;
            *k <= 40
        })
        .map(|c| c.curves.clone())
        .collect();
    let labels = null::Labels::singletons(chosen.iter().map(|c| c.model.as_str())).unwrap();
    let table = PairTable::from_curves(&chosen, &labels, Measure::HonestAgi).unwrap();
    assert!(table.failures.is_empty(), "{:?}", table.failures.first());
    assert!(table.pairs.len() > 10_000, "{}", table.pairs.len());
    let values: Vec<BTreeMap<String, Vec<f64>>> = chosen
        .iter()
        .map(|c| {
            c.roles
                .iter()
                .map(|(k, v)| (k.clone(), v.values.clone()))
                .collect()
        })
        .collect();
    let mut worst = 0.0f64;
    let mut different_depth = 0;
    for pair in &table.pairs {
        let want = plain_honestagi(&values[pair.a], &values[pair.b]);
        worst = worst.max((want - pair.score).abs());
        if chosen[pair.a].max_layers() != chosen[pair.b].max_layers() {
            different_depth += 1;
        }
    }
    assert!(different_depth > 1000, "{different_depth}");
    assert!(
        worst < 1e-9,
        "largest difference {worst:e} over {} pairs",
        table.pairs.len()
    );
}
