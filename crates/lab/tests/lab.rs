/*! The seed lab end to end on tiny models (seconds): determinism, resumption, derivations,
lab-file validation, fingerprints readable by the fingerprint crate. */

use std::path::Path;

use candle_core::{Device, Tensor};
use lab::data::{sha256_hex, Batches};
use lab::optim::{Optim, Schedule};
use lab::record::Record;
use lab::run::{Observer, Paths};
use lab::spec::Lab;
use lab::train::{train, Step};
use lab::{Error, Experts, Model, ModelConfig};

/// `RAYON_NUM_THREADS` is process-wide and part of a lab run's recipe hash: the test that
/// changes it and every test that runs a lab twice hold this lock, so that the variable does
/// not change under a run.
static THREADS_ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn threads_env() -> std::sync::MutexGuard<'static, ()> {
    THREADS_ENV.lock().unwrap_or_else(|e| e.into_inner())
}

fn tiny(layers: usize) -> ModelConfig {
    ModelConfig {
        layers,
        hidden: 16,
        heads: 2,
        kv_heads: 1,
        intermediate: 24,
        seq_len: 16,
        rope_theta: 10000.0,
        rms_eps: 1e-5,
        init_std: 0.02,
        experts: None,
    }
}

fn optim(steps: usize) -> Optim {
    Optim {
        steps,
        batch: 4,
        seq_len: 16,
        lr: 1e-2,
        min_lr: 1e-3,
        warmup: 2,
        schedule: Schedule::Cosine,
        weight_decay: 0.1,
        beta1: 0.9,
        beta2: 0.95,
        clip: 1.0,
    }
}

/// A deterministic English-like text (no download in tests).
fn text(n: usize) -> Vec<u8> {
    let words = [
        "the ",
        "state ",
        "of ",
        "union ",
        "is ",
        "strong ",
        "and ",
        "we ",
        "shall ",
        "keep ",
        "faith ",
        "with ",
        "people ",
        "congress ",
        "nation ",
        ". ",
    ];
    let mut x: u64 = 1;
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(words[(x >> 60) as usize].as_bytes());
    }
    out.truncate(n);
    out
}

fn trained_hash(steps: usize, init: u64, data: u64) -> (String, Vec<f32>) {
    let corpus = text(20_000);
    let m = Model::init(tiny(2), init, &Device::Cpu).unwrap();
    let o = optim(steps);
    let mut b = Batches::new(&corpus, (0, corpus.len()), o.batch, o.seq_len, data);
    let losses = train("t", &m, &mut b, &o, &[], &mut |_| {}, &mut |_, _, _| Ok(())).unwrap();
    let bytes = lab::checkpoint::encode(&m.values().unwrap()).unwrap();
    (sha256_hex(&bytes), losses)
}

#[test]
fn same_recipe_seed_and_threads_give_the_same_checkpoint_bit_for_bit() {
    // The only test that sets RAYON_NUM_THREADS (candle reads it on every kernel call).
    let _env = threads_env();
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let a = trained_hash(6, 1, 2);
    let b = trained_hash(6, 1, 2);
    assert_eq!(a, b);
    // Each seed alone changes the weights.
    assert_ne!(trained_hash(6, 3, 2).0, a.0, "init seed has no effect");
    assert_ne!(trained_hash(6, 1, 4).0, a.0, "data seed has no effect");
    std::env::set_var("RAYON_NUM_THREADS", "2");
    let c = trained_hash(6, 1, 2);
    let d = trained_hash(6, 1, 2);
    assert_eq!(c, d, "two threads are not reproducible");
    eprintln!(
        "1 vs 2 threads, tiny model: checkpoints {}",
        if a.0 == c.0 { "identical" } else { "differ" }
    );
}

#[test]
fn training_lowers_the_loss() {
    let (_, losses) = trained_hash(40, 5, 6);
    let first: f32 = losses[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = losses[35..].iter().sum::<f32>() / 5.0;
    // Uniform over 256 bytes is ln 256 = 5.55 nats; the text has ~20 distinct bytes.
    assert!(first > 5.0, "initial loss {first}");
    assert!(last < first - 1.5, "loss {first} -> {last}");
}

#[test]
fn upcycling_keeps_the_function_and_growth_keeps_the_layers() {
    let dev = Device::Cpu;
    let base = Model::init(tiny(4), 9, &dev).unwrap();
    let values = base.values().unwrap();
    let e = Experts { count: 4, top_k: 2 };
    let (c, v) = lab::derive::upcycle("m", &base.config, &values, e, 11).unwrap();
    let moe = Model::from_values(c, v, &dev).unwrap();
    let x = Tensor::from_vec(lab::model::tokens(b"the union is"), (1, 12), &dev).unwrap();
    let (a, b) = (base.forward(&x).unwrap(), moe.forward(&x).unwrap());
    let diff = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        diff < 1e-5,
        "identical experts must give the dense output, max diff {diff}"
    );
    assert!(matches!(
        lab::derive::upcycle("m", &moe.config, &moe.values().unwrap(), e, 1),
        Err(Error::Derive { .. })
    ));
    let (c, v) = lab::derive::grow("g", &base.config, &values, 2).unwrap();
    assert_eq!(c.layers, 6);
    // insert(2) on 4 layers: 0 1 0 1 2 3.
    let q = |v: &lab::derive::Values, l: usize| {
        v[&format!("model.layers.{l}.self_attn.q_proj.weight")]
            .1
            .clone()
    };
    assert_eq!(q(&v, 2), q(&values, 0));
    assert_eq!(q(&v, 5), q(&values, 3));
    Model::from_values(c, v, &dev).unwrap();
}

const LAB: &str = r#"
name = "tiny"
[corpus]
file = "corpus.txt"
sha256 = "SHA"
train = [0.0, 0.6]
[model]
hidden = 16
heads = 2
kv_heads = 1
intermediate = 32   # trace's fewest usable units per layer, so the weight tests run
seq_len = 16
rope_theta = 10000.0
rms_eps = 1e-5
init_std = 0.02
[optim]
steps = 4
batch = 2
lr = 1e-2
min_lr = 1e-3
warmup = 1
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
clip = 1.0
[[family]]
name = "ind"
kind = "independent"
layers = 2
count = 2
init_seed = 1
data_seed = 2
[[family]]
name = "moe"
kind = "continued"
base = "ind-00"
derivation = "upcycle"
experts = 2
top_k = 1
init_seed = 5
fractions = [0.0, 0.5, 1.0]
slice = [0.6, 0.8]
data_seed = 3
lr = 1e-3
[[family]]
name = "grow"
kind = "continued"
base = "ind-00"
derivation = "grow"
insert = 1
fractions = [0.0, 1.0]
slice = [0.8, 1.0]
data_seed = 4
lr = 1e-3
"#;

#[derive(Default)]
struct Quiet(Vec<String>);
impl Observer for Quiet {
    fn start(&mut self, _: &str, _: usize) {}
    fn step(&mut self, _: &str, _: Step) {}
    fn line(&mut self, l: &str) {
        self.0.push(l.to_string());
    }
}

fn setup(dir: &Path) -> (Lab, Paths) {
    let corpus = text(10_000);
    std::fs::write(dir.join("corpus.txt"), &corpus).unwrap();
    let file = dir.join("tiny.toml");
    let lab = Lab::parse(&file, &LAB.replace("SHA", &sha256_hex(&corpus))).unwrap();
    let paths = Paths {
        corpus: dir.join("corpus.txt"),
        scratch: dir.join("scratch"),
        baselines: dir.join("baselines"),
    };
    (lab, paths)
}

#[test]
fn a_tiny_lab_trains_fingerprints_and_resumes() {
    let _env = threads_env();
    let tmp = tempfile::tempdir().unwrap();
    let (lab, paths) = setup(tmp.path());
    let names = lab.model_names();
    assert_eq!(
        names,
        ["ind-00", "ind-01", "moe-000", "moe-050", "moe-100", "grow-000", "grow-100"]
    );
    let s = lab::run::run(&lab, &paths, &[], false, &mut Quiet::default()).unwrap();
    assert_eq!(s.trained.len(), 7);
    assert_eq!(s.fingerprinted.len(), 7);
    for n in &names {
        let fp = std::fs::read_to_string(paths.baselines.join(format!("{n}.json"))).unwrap();
        let fp: fingerprint::Fingerprint = serde_json::from_str(&fp).unwrap();
        let q = fp
            .tensors
            .iter()
            .filter(|t| t.tensor.ends_with("self_attn.q_proj.weight"));
        assert!(q.clone().all(|t| t.role.to_string() == "attn_q"), "{n}");
        let r: Record = serde_json::from_str(
            &std::fs::read_to_string(paths.baselines.join(format!("{n}.lab.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(&r.model, n);
        assert_eq!(q.count(), r.config.layers, "{n}");
        assert_eq!(r.losses.len(), r.steps);
    }
    let moe: Record = serde_json::from_str(
        &std::fs::read_to_string(paths.baselines.join("moe-100.lab.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(moe.steps, 4);
    assert_eq!(moe.config.experts, Some(Experts { count: 2, top_k: 1 }));
    let grow: Record = serde_json::from_str(
        &std::fs::read_to_string(paths.baselines.join("grow-000.lab.json")).unwrap(),
    )
    .unwrap();
    assert_eq!((grow.config.layers, grow.steps), (3, 0));

    // Everything verifies: nothing is trained or fingerprinted again.
    let s = lab::run::run(&lab, &paths, &[], false, &mut Quiet::default()).unwrap();
    assert!(s.trained.is_empty() && s.fingerprinted.is_empty(), "{s:?}");
    assert_eq!(s.reused.len(), 7);

    // Weight-level tests: the seed pair, and each derived snapshot against its base.
    let ran = lab::weight_tests::run_tests(&lab, &paths, false, &mut Quiet::default()).unwrap();
    assert_eq!(ran, 6);
    let wt = lab::weight_tests::WeightTests::load(&paths.baselines)
        .unwrap()
        .unwrap();
    let pairs: Vec<(&str, &str, &str)> = wt
        .tests
        .iter()
        .map(|t| (t.a.as_str(), t.b.as_str(), t.test.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("ind-00", "ind-01", "csu"),
            ("ind-00", "moe-000", "upcycle"),
            ("ind-00", "moe-050", "upcycle"),
            ("ind-00", "moe-100", "upcycle"),
            ("ind-00", "grow-000", "csu"),
            ("ind-00", "grow-100", "csu"),
        ]
    );
    // Experts copied from the base's MLP, untrained: the upcycling test finds them.
    let moe0 = &wt.tests[1];
    assert!(moe0.log10_p.unwrap() < -10.0, "{moe0:?}");
    // Nothing changed: nothing runs again, and the file is the same.
    let before = std::fs::read(paths.baselines.join(lab::weight_tests::TRACE_FILE)).unwrap();
    let ran = lab::weight_tests::run_tests(&lab, &paths, false, &mut Quiet::default()).unwrap();
    assert_eq!(ran, 0);
    assert_eq!(
        std::fs::read(paths.baselines.join(lab::weight_tests::TRACE_FILE)).unwrap(),
        before
    );

    // A damaged checkpoint is trained again, to the same bits.
    let w = paths.scratch.join("ind-01/model.safetensors");
    let before = std::fs::read(&w).unwrap();
    std::fs::write(&w, b"damaged").unwrap();
    let s = lab::run::run(&lab, &paths, &[], false, &mut Quiet::default()).unwrap();
    assert_eq!(
        s.trained.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
        ["ind-01"]
    );
    assert_eq!(std::fs::read(&w).unwrap(), before);
}

#[test]
fn lab_files_are_validated_with_the_file_and_field_named() {
    let _env = threads_env();
    let tmp = tempfile::tempdir().unwrap();
    let (_, paths) = setup(tmp.path());
    let file = Path::new("labs/x.toml");
    let ok = LAB.replace("SHA", &"a".repeat(64));
    let cases = [
        (
            ok.replace("layers = 2", "layers = 0"),
            "family[0] (ind).layers",
        ),
        (
            ok.replace("slice = [0.6, 0.8]", "slice = [0.5, 0.8]"),
            "family[1] (moe).slice",
        ),
        (
            ok.replace(
                "base = \"ind-00\"\nderivation = \"upcycle\"",
                "base = \"nope\"\nderivation = \"upcycle\"",
            ),
            "family[1] (moe).base",
        ),
        (
            ok.replace("top_k = 1", "top_k = 3"),
            "family[1] (moe).experts",
        ),
        (
            ok.replace("insert = 1", "insert = 5"),
            "family[2] (grow).insert",
        ),
        (
            ok.replace("fractions = [0.0, 1.0]", "fractions = [1.0, 0.5]"),
            "family[2] (grow).fractions",
        ),
        (ok.replace("heads = 2\n", "heads = 3\n"), "model.heads"),
        (ok.replace("warmup = 1", "warmup = 4"), "optim.warmup"),
        (
            ok.replace("hidden = 16", "hidden = 16\nwidth = 3"),
            "(file)",
        ),
        (
            ok.replace("count = 2", "count = 2\nlr = 0.1"),
            "family[0] (ind).lr",
        ),
    ];
    for (text, field) in cases {
        match Lab::parse(file, &text) {
            Err(Error::Spec {
                file: f,
                field: got,
                ..
            }) => {
                assert_eq!(f, file);
                assert_eq!(got, field);
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    // The pinned hash is checked against the corpus.
    let lab = Lab::parse(file, &ok).unwrap();
    let e = lab::run::run(&lab, &paths, &[], false, &mut Quiet::default()).unwrap_err();
    assert!(matches!(e, Error::Corpus { .. }), "{e}");
}

#[test]
fn strata_pair_the_seed_families_and_score_the_derived_against_their_base() {
    let _env = threads_env();
    let tmp = tempfile::tempdir().unwrap();
    let (_, paths) = setup(tmp.path());
    let corpus = std::fs::read(&paths.corpus).unwrap();
    let text = LAB
        .replace("SHA", &sha256_hex(&corpus))
        .replace("layers = 2\ncount = 2", "layers = 6\ncount = 3");
    let lab = Lab::parse(&tmp.path().join("tiny.toml"), &text).unwrap();
    lab::run::run(&lab, &paths, &[], false, &mut Quiet::default()).unwrap();
    let s = lab::strata::load(
        &paths.baselines,
        &null::CurveOptions::default(),
        &null::MeasureOptions::default(),
        0.927,
    )
    .unwrap();
    assert_eq!(s.seeds.len(), 1);
    let ind = &s.seeds[0];
    assert_eq!(
        (ind.family.as_str(), ind.layers, ind.models, ind.pairs.len()),
        ("ind", 6, 3, 3)
    );
    let above = ind.pairs.iter().filter(|p| p.score >= 0.927).count() as u64;
    assert_eq!((ind.at_or_above.count, ind.at_or_above.n), (above, 3));
    assert!(ind.at_or_above.interval.0 <= ind.at_or_above.rate);
    let mut scores: Vec<f64> = ind.pairs.iter().map(|p| p.score).collect();
    scores.sort_by(f64::total_cmp);
    assert_eq!((ind.median, ind.highest), (scores[1], scores[2]));
    let fams: Vec<(&str, f64)> = s
        .derived
        .iter()
        .map(|p| (p.family.as_str(), p.fraction))
        .collect();
    assert_eq!(
        fams,
        [
            ("grow", 0.0),
            ("grow", 1.0),
            ("moe", 0.0),
            ("moe", 0.5),
            ("moe", 1.0)
        ]
    );
    // Upcycling copies the attention: the untrained MoE has the base's attention curves.
    assert!(
        (s.derived[2].score - 1.0).abs() < 1e-9,
        "{}",
        s.derived[2].score
    );
    assert_eq!(s.derived[0].layers, 7);
    // Loss curves: the seed family averaged over its 3 models, each derived family as its
    // longest run, starting where its base stopped.
    let curves: Vec<(&str, usize, usize, bool)> = s
        .losses
        .iter()
        .map(|c| {
            (
                c.family.as_str(),
                c.models,
                c.start_step,
                c.losses.is_empty(),
            )
        })
        .collect();
    let base_steps = s.losses[0].losses.len();
    assert!(base_steps > 0);
    assert_eq!(
        curves,
        [
            ("ind", 3, 0, false),
            ("grow", 1, base_steps, false),
            ("moe", 1, base_steps, false)
        ]
    );
    assert!(s
        .losses
        .iter()
        .flat_map(|c| &c.losses)
        .all(|l| l.is_finite()));
}
