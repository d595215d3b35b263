//! The tests of the statistics: under a true null the p-values must be uniform (KS test over
//! 1,000 independent null pairs), and the naive layer shuffle must be shown anti-conservative.
//! Sizes fit `cargo test`; `calibrate::run_full` runs everything at full size.

use null::calibrate::{leave_one_out, simulate, SimCalibration, SimNull};
use null::labels::Labels;
use null::measure::Measure;
use null::nulls::surrogate::SurrogateKind;
use null::rng::stream;
use null::sim::NullModel;
use null::table::PairTable;

fn report(c: &null::calibrate::Calibration) {
    let r: Vec<String> = c
        .rejection
        .iter()
        .map(|r| format!("{:.3}@{}", r.rate, r.threshold))
        .collect();
    eprintln!(
        "calibration {} / {} / {}: n {} KS D {:.4} p {:.3e}; rejection {}",
        c.name,
        c.null,
        c.measure,
        c.n,
        c.ks.d,
        c.ks.p,
        r.join(" ")
    );
}

fn sim(
    null: SimNull,
    measure: Measure,
    replicates: usize,
    seed: u64,
) -> null::calibrate::Calibration {
    let c = simulate(&SimCalibration {
        null,
        measure,
        model: NullModel::default(),
        replicates,
        seed,
    })
    .unwrap();
    report(&c);
    assert_eq!(c.n, replicates, "no replicate may fail");
    c
}

/// KS does not reject uniformity at 1%, and the rejection rate at 0.05 is within 0.025 of
/// nominal (about 3.5 standard errors at n = 1000). The shuffle null misses this by 0.7.
#[track_caller]
fn assert_calibrated(c: &null::calibrate::Calibration) {
    assert!(c.ks.p > 0.01, "{} {}: KS p {}", c.null, c.measure, c.ks.p);
    let r05 = c.rejection_at(0.05).unwrap();
    assert!(
        (r05.rate - 0.05).abs() <= 0.025,
        "{} {}: rejection at 0.05 is {}",
        c.null,
        c.measure,
        r05.rate
    );
}

#[test]
fn panel_null_p_values_are_uniform_for_every_measure() {
    for (i, m) in Measure::ALL.into_iter().enumerate() {
        let c = sim(SimNull::Panel { models: 40 }, m, 1000, 100 + i as u64);
        assert_calibrated(&c);
    }
}

#[test]
fn naive_layer_shuffle_is_anti_conservative_on_trending_curves() {
    let c = sim(
        SimNull::Surrogate {
            surrogate: SurrogateKind::Shuffle,
            samples: 99,
        },
        Measure::HonestAgi,
        1000,
        7,
    );
    let r05 = c.rejection_at(0.05).unwrap();
    // Nominal 5%: the shuffle null rejects most independent pairs.
    assert!(r05.interval.0 > 0.5, "rejection at 0.05: {}", r05.rate);
    assert!(c.ks.p < 1e-10);
    // Differencing removes the shared trend; the shuffle null is then near-calibrated.
    let d = sim(
        SimNull::Surrogate {
            surrogate: SurrogateKind::Shuffle,
            samples: 99,
        },
        Measure::Diff,
        1000,
        7,
    );
    assert!(
        d.rejection_at(0.05).unwrap().rate < 0.1,
        "{:?}",
        d.rejection
    );
}

#[test]
fn trend_dct_surrogate_p_values_are_uniform() {
    for (i, m) in [Measure::HonestAgi, Measure::Detrended(1)]
        .into_iter()
        .enumerate()
    {
        let c = sim(
            SimNull::Surrogate {
                surrogate: SurrogateKind::TrendDct(2),
                samples: 199,
            },
            m,
            1000,
            11 + i as u64,
        );
        assert_calibrated(&c);
    }
}

#[test]
fn leave_one_out_on_an_exchangeable_panel_is_uniform() {
    // "Shuffled" panel: 60 independent simulated models, every pair unrelated; each pair is
    // tested against the pairs that share no model with it.
    let model = NullModel::default();
    let panel = model.panel("m", 60, &mut stream(31, 0)).unwrap();
    let labels = Labels::singletons(panel.iter().map(|c| c.model.as_str())).unwrap();
    let table = PairTable::from_curves(&panel, &labels, Measure::HonestAgi).unwrap();
    let c = leave_one_out(&table).unwrap();
    report(&c);
    assert_eq!(c.n, 60 * 59 / 2);
    let r05 = c.rejection_at(0.05).unwrap();
    assert!((0.03..=0.07).contains(&r05.rate), "{}", r05.rate);
}

#[test]
fn calibration_is_identical_at_any_thread_count() {
    let cfg = SimCalibration {
        null: SimNull::Surrogate {
            surrogate: SurrogateKind::TrendAr(2),
            samples: 49,
        },
        measure: Measure::Spearman,
        model: NullModel::default(),
        replicates: 40,
        seed: 5,
    };
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| simulate(&cfg).unwrap())
    };
    assert_eq!(run(1), run(4));
}
