/*!
Calibration of the matching test's nulls on real weights, and the degenerate units that must
never fake a lineage (issue 23).

* Every equal-shape unrelated layer pair at hand: AntiBERTy (8 layers) × Whisper-base (6
  encoder + 6 decoder layers), 512 wide with 2048 units: 96 pairs.
* Rotated, layer-shifted copies of all-MiniLM-L6-v2: B's MLP at layer i is A's MLP at layer
  i + shift (mod 6), turned on its residual side by one random orthogonal matrix; embeddings
  untouched. Every depth-paired layer pair is two different layers.
* all-MiniLM-L6-v2 against paraphrase-MiniLM-L3-v2: a shared residual basis without shared
  units, which the verdict must not call shared units.

The CI tests run small subsets; the `#[ignore]`d `calibrate_*` tests are the full runs behind
the table in the crate docs (`cargo test -p nullprint-trace --release --test integration
calibrate_ -- --ignored --nocapture`; `UNITS` and `DRAWS` override their sizes).
*/

use std::collections::BTreeMap;

use fingerprint::roles::{Role, RoleKey};
use ndarray::Array2;
use trace::{CsuOptions, LayerId, ModelWeights};

type Mats = BTreeMap<RoleKey, Array2<f32>>;

fn open(test: &str, name: &str, file: &str) -> Option<ModelWeights> {
    let p = testkit::real_model(test, name, file)?;
    Some(ModelWeights::open(p.to_str().unwrap()).unwrap())
}

fn mlps(w: &ModelWeights) -> Mats {
    w.materialize(|k| {
        k.expert.is_none() && matches!(k.role, Role::MlpGate | Role::MlpUp | Role::MlpDown)
    })
    .unwrap()
}

fn all_pairs(a: &ModelWeights, b: &ModelWeights) -> Vec<(LayerId, LayerId)> {
    let la: Vec<LayerId> = a.mlp_sites().0.iter().map(|s| s.layer).collect();
    let lb: Vec<LayerId> = b.mlp_sites().0.iter().map(|s| s.layer).collect();
    la.iter()
        .flat_map(|x| lb.iter().map(move |y| (*x, *y)))
        .collect()
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// AntiBERTy × Whisper-base, the given layer pairs (all 96 when `None`).
fn antiberty_whisper(
    test: &str,
    take: Option<&[(usize, usize)]>,
    units: usize,
    draws: usize,
) -> Option<trace::calibration::Calibration> {
    let (ab, wh) = (
        open(test, "antiberty", "pytorch_model.bin")?,
        open(test, "whisper-base", "model.bin")?,
    );
    let a = ModelWeights::in_memory("antiberty", mlps(&ab));
    let b = ModelWeights::in_memory("whisper-base", mlps(&wh));
    let la: Vec<LayerId> = a.mlp_sites().0.iter().map(|s| s.layer).collect();
    let lb: Vec<LayerId> = b.mlp_sites().0.iter().map(|s| s.layer).collect();
    assert_eq!((la.len(), lb.len()), (8, 12));
    let pairs = match take {
        Some(t) => t.iter().map(|&(i, j)| (la[i], lb[j])).collect(),
        None => all_pairs(&a, &b),
    };
    let t = std::time::Instant::now();
    let mut layers = Vec::new();
    for chunk in pairs.chunks(8) {
        let r = trace::csu(
            &a,
            &b,
            &CsuOptions {
                pairs: Some(chunk.to_vec()),
                ..opts(units, 23, draws)
            },
        )
        .unwrap();
        for l in &r.layers {
            eprintln!(
                "{} ↔ {}: K {} | rotation draws {:?} p {:.4} | exact law {:.4}",
                l.layer_a,
                l.layer_b,
                l.coincidences,
                l.basis.coincidences,
                10f64.powf(l.log10_p_randomized),
                10f64.powf(l.exact_law.log10_p_randomized)
            );
        }
        layers.extend(r.layers);
        eprintln!("{} pairs, {:.1?}", layers.len(), t.elapsed());
    }
    let c = trace::calibration::summarize("AntiBERTy × Whisper-base MLPs", &layers).unwrap();
    eprintln!(
        "{}\n{}",
        trace::calibration::Calibration::markdown_header(),
        c.markdown_row()
    );
    Some(c)
}

/// The size is at its level when the level is inside (or above) the Clopper–Pearson
/// interval of the rejection rate, and the count of K ≥ 4 is not too large for the null.
#[track_caller]
fn assert_at_level(c: &trace::calibration::Calibration) {
    for s in &c.rotation {
        assert!(
            s.interval.0 <= s.alpha,
            "{}: size at {} is {}/{} [{:.3}, {:.3}]",
            c.name,
            s.alpha,
            s.rejections,
            s.n,
            s.interval.0,
            s.interval.1
        );
    }
    assert!(
        c.tail.p_rotation > 0.01,
        "{}: K ≥ 4 tail {:?}",
        c.name,
        c.tail
    );
}

/// CI subset: 16 AntiBERTy × Whisper-base layer pairs (both Whisper stacks) at 256 units.
#[test]
fn unrelated_layer_pairs_subset_is_at_level() {
    let take: Vec<(usize, usize)> = (0..8)
        .flat_map(|i| [(i, i % 6), (i, 6 + (i + 3) % 6)])
        .collect();
    let Some(c) = antiberty_whisper("unrelated_layer_pairs_subset", Some(&take), 256, 8) else {
        return;
    };
    assert_eq!(c.pairs, 16);
    assert!(c.rotation[0].rejections <= 1, "{c:?}");
    assert_at_level(&c);
}

/// Full run: all 96 AntiBERTy × Whisper-base layer pairs.
#[test]
#[ignore]
fn calibrate_unrelated_layer_pairs() {
    let Some(c) = antiberty_whisper(
        "calibrate_unrelated",
        None,
        env("UNITS", 512),
        env("DRAWS", 16),
    ) else {
        return;
    };
    assert_eq!(c.pairs, 96);
    assert_at_level(&c);
}

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

fn key(layer: u32, role: Role) -> RoleKey {
    RoleKey {
        stack: None,
        layer: Some(layer),
        role,
        expert: None,
    }
}

fn gaussian(rows: usize, cols: usize, std: f32, r: &mut impl rand::Rng) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || {
        let z: f32 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, r);
        z * std
    })
}

/// A randomly initialized ungated MLP stack: N(0, 1/in) weights.
fn random_model(layers: u32, width: usize, hidden: usize, seed: u64) -> Mats {
    let mut r = null::rng::stream(seed, 0);
    let mut m = Mats::new();
    for l in 0..layers {
        m.insert(
            key(l, Role::MlpUp),
            gaussian(width, hidden, (1.0 / hidden as f32).sqrt(), &mut r),
        );
        m.insert(
            key(l, Role::MlpDown),
            gaussian(hidden, width, (1.0 / width as f32).sqrt(), &mut r),
        );
    }
    m
}

/// A Haar-random orthogonal matrix: Gram–Schmidt on a Gaussian matrix's columns (the QR
/// factor with a positive diagonal of R, which is Haar; Mezzadri 2007).
fn haar(n: usize, seed: u64) -> Array2<f64> {
    let mut r = null::rng::stream(seed, 1);
    let mut q = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let mut v: Vec<f64> = (0..n).map(|_| null::rng::normal(&mut r)).collect();
        for _ in 0..2 {
            for k in 0..j {
                let dot: f64 = (0..n).map(|i| q[(i, k)] * v[i]).sum();
                (0..n).for_each(|i| v[i] -= dot * q[(i, k)]);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        (0..n).for_each(|i| q[(i, j)] = v[i] / norm);
    }
    q
}

/// Options with the given units, seed and null draws.
fn opts(max_units: usize, seed: u64, draws: usize) -> CsuOptions {
    CsuOptions {
        max_units,
        seed,
        null_draws: draws,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------
// Degenerate units
// ---------------------------------------------------------------------------------------

/// How a model's units are damaged.
#[derive(Clone, Copy, Debug)]
enum Damage {
    ZeroLayer,
    HalfPruned,
    AllZero,
    NanLayer,
    ConstantUnits,
    DuplicatedUnits,
    DeadDown,
}

fn damage(m: &mut Mats, d: Damage) {
    let width = m[&key(0, Role::MlpUp)].nrows();
    for (k, a) in m.iter_mut() {
        let first = k.layer == Some(0);
        let unit_axis = if k.role == Role::MlpDown { 1 } else { 0 };
        let src = a.index_axis(ndarray::Axis(unit_axis), 0).to_owned();
        let mut units = |f: &dyn Fn(usize) -> bool, v: &dyn Fn(usize, usize) -> f32| {
            for u in (0..width).filter(|&u| f(u)) {
                let mut lane = a.index_axis_mut(ndarray::Axis(unit_axis), u);
                for (i, x) in lane.iter_mut().enumerate() {
                    *x = v(u, i);
                }
            }
        };
        match d {
            Damage::ZeroLayer if first => units(&|_| true, &|_, _| 0.0),
            Damage::AllZero => units(&|_| true, &|_, _| 0.0),
            Damage::NanLayer if first => units(&|_| true, &|_, _| f32::NAN),
            Damage::HalfPruned => units(&|u| u % 2 == 0, &|_, _| 0.0),
            Damage::ConstantUnits => units(&|u| u < width * 3 / 4, &|u, _| 0.01 * u as f32),
            Damage::DeadDown if k.role == Role::MlpDown => units(&|u| u % 3 != 0, &|_, _| 0.0),
            Damage::DuplicatedUnits => units(&|u| u % 4 != 1, &|_, i| src[i]),
            _ => {}
        }
    }
}

/// Pruned, dead, zeroed, constant, duplicated and NaN units, on either side or both: the
/// two-view test (rotation null and exact law) never calls the model related to an independent
/// one, the same-index test rejects no more often than its level allows, a layer with too few
/// usable units is refused with the counts, and a model with none is not testable.
#[test]
fn degenerate_units_never_fake_a_lineage() {
    let all = [
        Damage::ZeroLayer,
        Damage::HalfPruned,
        Damage::AllZero,
        Damage::NanLayer,
        Damage::ConstantUnits,
        Damage::DuplicatedUnits,
        Damage::DeadDown,
    ];
    let mut same_index_rejections = 0;
    for (i, &d) in all.iter().enumerate() {
        for (j, sides) in [[true, false], [false, true], [true, true]]
            .iter()
            .enumerate()
        {
            let seed = 10 * i as u64 + 2 * j as u64;
            let mut ma = random_model(2, 256, 64, seed);
            let mut mb = random_model(2, 256, 64, seed + 1);
            if sides[0] {
                damage(&mut ma, d);
            }
            let sides = *sides;
            if sides[1] {
                damage(&mut mb, d);
            }
            let a = ModelWeights::in_memory("a", ma);
            let b = ModelWeights::in_memory("b", mb);
            let what = format!("{d:?} on {sides:?}");
            match trace::csu(&a, &b, &opts(128, seed, 8)) {
                Ok(r) => {
                    eprintln!(
                        "{what}: log10 p {:.2}, exact law {:.2}; {}",
                        r.log10_p, r.exact_law.log10_p, r.verdict
                    );
                    assert!(r.log10_p > -2.0, "{what}: {}", r.summary());
                    assert!(
                        r.exact_law.log10_p > -2.0,
                        "{what}: exact law {}",
                        r.exact_law.log10_p
                    );
                    assert!(
                        !r.verdict.starts_with("shared directions"),
                        "{what}: {}",
                        r.summary()
                    );
                    // The same-index test is exact at α: over 21 independent cases one chance
                    // rejection is expected 19% of the time, two 1.7%.
                    if r.verdict.starts_with("shared units") {
                        same_index_rejections += 1;
                        eprintln!("{what}: same-index rejection:\n{}", r.summary());
                    }
                    let excluded: usize = r
                        .layers
                        .iter()
                        .map(|l| l.excluded_a.total() + l.excluded_b.total())
                        .sum();
                    assert!(
                        excluded > 0 || !r.skipped.is_empty(),
                        "{what}: nothing excluded"
                    );
                    if matches!(d, Damage::ZeroLayer | Damage::NanLayer) {
                        assert_eq!(r.layers.len(), 1, "{what}");
                        let s = &r.skipped[0];
                        assert!(s.reason.contains("too few usable units"), "{what}: {s:?}");
                    }
                }
                Err(trace::Error::NotTestable { reason }) => {
                    eprintln!("{what}: refused: {reason}");
                    assert!(matches!(d, Damage::AllZero), "{what}: {reason}");
                    assert!(
                        reason.contains("too few usable units") && reason.contains("256 zero"),
                        "{reason}"
                    );
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
    }
    assert!(
        same_index_rejections <= 1,
        "{same_index_rejections} same-index rejections"
    );
}

// ---------------------------------------------------------------------------------------
// Rotated, layer-shifted copies of MiniLM
// ---------------------------------------------------------------------------------------

/// all-minilm-l6-v2's MLPs and embedding, with B's MLP at layer i replaced by A's MLP at layer
/// `(i + shift) mod 6` turned on its residual side by one Haar-random orthogonal matrix
/// (embedding untouched): every depth-paired layer pair is two different layers.
fn shifted_rotated(base: &Mats, shift: u32, seed: u64) -> Mats {
    let layers = base.keys().filter_map(|k| k.layer).max().unwrap() + 1;
    let hidden = base[&key(0, Role::MlpUp)].ncols();
    let q = haar(hidden, seed).mapv(|v| v as f32);
    let mut out: Mats = base
        .iter()
        .filter(|(k, _)| k.layer.is_none())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for l in 0..layers {
        let src = (l + shift) % layers;
        // Up rows v -> Q v (rows · Qᵀ); down columns c -> Q c.
        out.insert(
            key(l, Role::MlpUp),
            base[&key(src, Role::MlpUp)].dot(&q.t()),
        );
        out.insert(
            key(l, Role::MlpDown),
            q.dot(&base[&key(src, Role::MlpDown)]),
        );
    }
    out
}

fn embed_and_mlps(w: &ModelWeights) -> Mats {
    w.materialize(|k| {
        k.expert.is_none()
            && (matches!(k.role, Role::MlpUp | Role::MlpDown)
                || (k.role == Role::Embed && k.layer.is_none()))
    })
    .unwrap()
}

fn minilm(test: &str) -> Option<Mats> {
    Some(embed_and_mlps(&open(
        test,
        "all-minilm-l6-v2",
        "model.safetensors",
    )?))
}

/// The calibration over the mismatched layer pairs of rotated, shifted MiniLM copies.
fn shifted_copies(
    base: &Mats,
    shifts: &[u32],
    seeds: &[u64],
    units: usize,
    draws: usize,
) -> trace::calibration::Calibration {
    let a = ModelWeights::in_memory("minilm", base.clone());
    let mut layers = Vec::new();
    for &shift in shifts {
        for &seed in seeds {
            let b = ModelWeights::in_memory(
                format!("minilm-shift{shift}-rot{seed}"),
                shifted_rotated(base, shift, 1000 + seed),
            );
            let r = trace::csu(&a, &b, &opts(units, seed, draws)).unwrap();
            eprintln!(
                "shift {shift} seed {seed}: K {:?}, null means {:?}, log10 p {:.2} (exact law {:.2}); {}",
                r.layers.iter().map(|l| l.coincidences).collect::<Vec<_>>(),
                r.layers.iter().map(|l| (l.basis.mean * 10.0).round() / 10.0).collect::<Vec<_>>(),
                r.log10_p,
                r.exact_law.log10_p,
                r.verdict
            );
            assert_eq!(r.residual.identity_fraction, Some(1.0));
            for l in &r.layers {
                eprintln!(
                    "  {} ↔ {}: K {} | rotation draws {:?} p {:.4} | exact law {:.4}",
                    l.layer_a,
                    l.layer_b,
                    l.coincidences,
                    l.basis.coincidences,
                    10f64.powf(l.log10_p_randomized),
                    10f64.powf(l.exact_law.log10_p_randomized)
                );
            }
            layers.extend(r.layers);
        }
    }
    let c =
        trace::calibration::summarize("rotated, layer-shifted all-MiniLM-L6-v2", &layers).unwrap();
    eprintln!(
        "{}\n{}",
        trace::calibration::Calibration::markdown_header(),
        c.markdown_row()
    );
    c
}

/// CI subset: shifts 1 and 2, one rotation each, 256 units: the rotated, shifted copy is not
/// called related at 0.01 (the issue measured log10 p −2.4 and −7.3 with the exact law).
#[test]
fn rotated_shifted_minilm_is_not_called_related() {
    let Some(base) = minilm("rotated_shifted_minilm") else {
        return;
    };
    let c = shifted_copies(&base, &[1, 2], &[0], 256, 8);
    assert_eq!(c.pairs, 12);
    assert!(c.rotation[0].rejections <= 1, "{c:?}");
}

/// Full run: shifts 1–5, `SEEDS` rotations each (default 4: 120 mismatched layer pairs).
#[test]
#[ignore]
fn calibrate_rotated_shifted_minilm() {
    let Some(base) = minilm("calibrate_rotated_shifted_minilm") else {
        return;
    };
    let seeds: Vec<u64> = (0..env("SEEDS", 4) as u64).collect();
    let c = shifted_copies(
        &base,
        &[1, 2, 3, 4, 5],
        &seeds,
        env("UNITS", 512),
        env("DRAWS", 16),
    );
    assert_eq!(c.pairs, 30 * seeds.len() as u64);
    // The bar: at most 5% of mismatched pairs rejected at 0.01.
    assert!(c.rotation[0].rate <= 0.05, "{c:?}");
    assert_at_level(&c);
}

/// all-MiniLM-L6-v2 against paraphrase-MiniLM-L3-v2: one family, a shared residual basis, but
/// no layer of one is a unit-for-unit copy of a layer of the other. All 18 layer pairs.
#[test]
fn shared_basis_is_not_called_shared_units() {
    let (Some(l6), Some(l3)) = (
        open("shared_basis", "all-minilm-l6-v2", "model.safetensors"),
        open("shared_basis", "paraphrase-minilm-l3-v2", "model.onnx"),
    ) else {
        return;
    };
    let a = ModelWeights::in_memory("all-minilm-l6-v2", embed_and_mlps(&l6));
    let b = ModelWeights::in_memory("paraphrase-minilm-l3-v2", embed_and_mlps(&l3));
    let r = trace::csu(
        &a,
        &b,
        &CsuOptions {
            pairs: Some(all_pairs(&a, &b)),
            ..opts(env("UNITS", 256), 5, env("DRAWS", 8))
        },
    )
    .unwrap();
    eprintln!("{}", r.summary());
    assert_eq!(r.layers.len(), 18);
    // The two-view test rejects (the layers share directions: one family, one basis), but the
    // verdict must not call that shared units.
    assert!(r.verdict.starts_with("shared directions"), "{}", r.verdict);
}

// ---------------------------------------------------------------------------------------
// Reproducibility and per-pair randomization
// ---------------------------------------------------------------------------------------

/// Bit-identical results at one and at two threads; a different model pair under the same seed
/// gets different null draws and uniforms (they depend on the pair's weights, not only on the
/// seed and the layer position).
#[test]
fn draws_are_reproducible_and_depend_on_the_pair() {
    let a = ModelWeights::in_memory("a", random_model(2, 256, 64, 900));
    let b = ModelWeights::in_memory("b", random_model(2, 256, 64, 901));
    let c = ModelWeights::in_memory("c", random_model(2, 256, 64, 902));
    let run = |threads: usize, x: &ModelWeights, y: &ModelWeights| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let r = pool.install(|| trace::csu(x, y, &opts(128, 4, 16)).unwrap());
        serde_json::to_string(&r).unwrap()
    };
    assert_eq!(run(1, &a, &b), run(2, &a, &b));
    let ab = trace::csu(&a, &b, &opts(128, 4, 16)).unwrap();
    let ac = trace::csu(&a, &c, &opts(128, 4, 16)).unwrap();
    for (x, y) in ab.layers.iter().zip(&ac.layers) {
        assert_ne!(x.basis.coincidences, y.basis.coincidences);
        assert_ne!(x.log10_p_randomized, y.log10_p_randomized);
    }
}
