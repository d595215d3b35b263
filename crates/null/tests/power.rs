//! Power on controlled derivations at alpha = 0.01: derived models must be detected when the
//! derivation is mild, and power must fall as the perturbation grows.

use null::derivation::{Derivation, InsertMode};
use null::labels::Labels;
use null::measure::Measure;
use null::nulls::surrogate::SurrogateKind;
use null::power::{power, PowerConfig, PowerNull, PowerRow};
use null::rng::stream;
use null::sim::NullModel;

fn print(rows: &[PowerRow]) {
    for r in rows {
        eprintln!(
            "power {:<28} {:<10} {:<10} n {:>3} power {:.3} [{:.3}, {:.3}] median score {:.4} min p {:.4}",
            r.derivation_name,
            r.measure.to_string(),
            r.null,
            r.n,
            r.power,
            r.interval.0,
            r.interval.1,
            r.median_score,
            r.min_p
        );
    }
}

fn find<'a>(rows: &'a [PowerRow], d: &str, m: Measure, null: &str) -> &'a PowerRow {
    rows.iter()
        .find(|r| r.derivation_name == d && r.measure == m && r.null == null)
        .unwrap_or_else(|| panic!("no row {d} {m} {null}"))
}

#[test]
fn power_on_derivations_of_simulated_models() {
    let model = NullModel::default();
    let bases = model.panel("base", 8, &mut stream(71, 0)).unwrap();
    let panel = model.panel("p", 40, &mut stream(72, 0)).unwrap();
    let labels = Labels::singletons(panel.iter().map(|c| c.model.as_str())).unwrap();
    let cfg = PowerConfig {
        derivations: vec![
            Derivation::Noise { rel: 1e-4 },
            Derivation::Noise { rel: 1e-2 },
            Derivation::Noise { rel: 1e-1 },
            Derivation::Drift { rel: 1e-2 },
            Derivation::Upcycle {
                experts: 8,
                rel: 1e-2,
            },
            Derivation::Insert {
                count: 4,
                mode: InsertMode::Duplicate,
                rel: 1e-3,
            },
            Derivation::Prune {
                count: 4,
                rel: 1e-3,
            },
        ],
        measures: vec![Measure::HonestAgi, Measure::Detrended(1), Measure::Diff],
        nulls: vec![
            PowerNull::Panel,
            PowerNull::Surrogate {
                surrogate: SurrogateKind::TrendDct(2),
                samples: 199,
            },
        ],
        alpha: 0.01,
        replicates: 40,
        seed: 3,
    };
    let rows = power(&bases, &panel, &labels, &cfg).unwrap();
    print(&rows);
    assert_eq!(rows.len(), 7 * 3 * 2);
    assert!(rows.iter().all(|r| r.failed == 0 && r.n == 40));
    // Fine-tuning-sized noise is detected by every measure against the panel.
    for m in cfg.measures.iter().copied() {
        let r = find(&rows, "noise(rel=0.0001)", m, "panel");
        assert!(r.power >= 0.95, "{m}: {}", r.power);
        assert!(r.median_score > 0.999, "{m}: {}", r.median_score);
    }
    // Power falls with the noise level (per-layer noise of 10% swamps a 3% random-walk step).
    let p4 = find(&rows, "noise(rel=0.0001)", Measure::HonestAgi, "trend-dct").power;
    let p1 = find(&rows, "noise(rel=0.1)", Measure::HonestAgi, "trend-dct").power;
    assert!(p4 > p1, "{p4} vs {p1}");
    // Pruning and upcycling keep the published score high enough to be detected.
    for d in ["prune(count=4, rel=0.001)", "upcycle(experts=8, rel=0.01)"] {
        let r = find(&rows, d, Measure::HonestAgi, "panel");
        assert!(r.power >= 0.9, "{d}: {}", r.power);
    }
    // Depth up-scaling shifts every later layer on the normalised grid: the published measure
    // scores about 0.93, inside the range of unrelated same-trend models, while the detrended
    // measure still separates it from the panel.
    let ins = "insert(count=4, mode=duplicate, rel=0.001)";
    let h = find(&rows, ins, Measure::HonestAgi, "panel");
    let d = find(&rows, ins, Measure::Detrended(1), "panel");
    assert!(d.power >= 0.9, "{}", d.power);
    assert!(h.power < d.power, "{} vs {}", h.power, d.power);
}

#[test]
fn power_is_zero_by_construction_when_the_null_cannot_reach_alpha() {
    let model = NullModel::default();
    let bases = model.panel("base", 2, &mut stream(5, 0)).unwrap();
    let cfg = PowerConfig {
        derivations: vec![Derivation::Noise { rel: 1e-4 }],
        measures: vec![Measure::HonestAgi],
        nulls: vec![PowerNull::Surrogate {
            surrogate: SurrogateKind::Circular,
            samples: 0,
        }],
        alpha: 0.01,
        replicates: 10,
        seed: 1,
    };
    let rows = power(&bases, &[], &Labels::empty(), &cfg).unwrap();
    // 24 layers: circular shifts give p >= 1/24 > 0.01.
    assert_eq!(rows[0].power, 0.0);
    assert!((rows[0].min_p - 1.0 / 24.0).abs() < 1e-12);
}
