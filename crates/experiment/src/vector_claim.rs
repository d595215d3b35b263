//! Claims about per-layer vectors (e.g. "the LayerNorm weights of model A and model B have
//! cosine 0.989"): an experiment file with a `[vectors]` section in, a [`report::Report`] out.
//!
//! The file names the claim and its published figures, the measure the claim used and the
//! measures to compare it with ([`null::vectors`]), the roles, and a vector panel (a baselines
//! index whose fingerprints keep their vectors: `nullprint baselines --vectors`). Every pair of
//! panel models (and positive controls) whose vectors have one width is compared: pairs with
//! the same root are related, others unrelated (the index's lineage rule). For each pair and
//! role the report gives the same-layer mean of each measure, the claim's own "sigma"
//! arithmetic, and the dimension-permutation null ([`null::nulls::permutation`]). A third claim
//! of this kind needs only a new experiment file.

use std::path::{Path, PathBuf};

use fingerprint::roles::{Role, Stack};
use fingerprint::vectors::NORM_ROLES;
use fingerprint::Fingerprint;
use null::nulls::permutation::{self, PermutationTest};
use null::pvalue::rates_at_or_above;
use null::rng::child_seed;
use null::vectors::{claim_sigma, same_layer, Baseline, ClaimSigma, LayerVectors, VectorMeasure};
use report::model as rm;
use serde::Deserialize;

use crate::assemble::{interval, null_row};
use crate::error::{Error, Result};
use crate::index::{ControlsIndex, PanelIndex};
use crate::inputs::Inputs;
use crate::policy::MAX_SAMPLES;
use crate::spec::{Header, PublishedSpec};

/// A vector-claim experiment file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorExperiment {
    /// Identity and question.
    pub experiment: Header,
    /// The claim.
    pub claim: VectorClaimSpec,
    /// Further published figures.
    #[serde(default)]
    pub published: Vec<PublishedSpec>,
    /// Which vectors and measures.
    pub vectors: VectorsSpec,
    /// The vector panel.
    pub panel: VectorPanelSpec,
    /// Nulls.
    pub nulls: VectorNullsSpec,
}

/// `[claim]` of a vector claim.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorClaimSpec {
    /// What was claimed.
    pub description: String,
    /// First model of the claimed pair.
    pub model_a: String,
    /// Second model.
    pub model_b: String,
    /// The published same-layer value of `[vectors].measure`.
    pub value: f64,
    /// The published "sigma", when the claim gave one.
    #[serde(default)]
    pub sigma: Option<f64>,
    /// The conclusion drawn.
    pub conclusion: String,
    /// Source of the value.
    pub citation: String,
}

/// `[vectors]`: which vectors are compared, and how.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorsSpec {
    /// The measure the claim used.
    pub measure: VectorMeasure,
    /// Further measures reported side by side.
    #[serde(default)]
    pub compare: Vec<VectorMeasure>,
    /// Roles (normalisation roles, or their biases), e.g. `["attn_norm", "mlp_norm"]`.
    pub roles: Vec<String>,
    /// The stack of encoder-decoder models to read (models with one stack ignore it).
    #[serde(default = "default_stack")]
    pub stack: Stack,
    /// Which within-model layer pairs the claim's baseline used.
    pub baseline: Baseline,
}

fn default_stack() -> Stack {
    Stack::Encoder
}

/// `[panel]` of a vector claim.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorPanelSpec {
    /// The vector panel's index, relative to the experiment file.
    pub index: PathBuf,
    /// Its positive controls' index (derived checkpoints), relative to the experiment file.
    #[serde(default)]
    pub controls: Option<PathBuf>,
}

/// `[nulls]` of a vector claim.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorNullsSpec {
    /// Master seed; each (pair, role, measure) draws from its own child seed.
    pub seed: u64,
    /// Draws of the permutation null per (pair, role, measure).
    pub samples: usize,
}

/// Whether the experiment file at `path` is a vector claim (it has a `[vectors]` section).
/// A file that cannot be read or parsed is not one (the ordinary loader reports why).
pub fn is_vector_experiment(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("vectors"))
}

impl VectorExperiment {
    /// Read and check a vector-claim file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let e: VectorExperiment = toml::from_str(&text).map_err(|source| Error::Schema {
            path: path.into(),
            what: "a vector-claim experiment file",
            source: Box::new(source),
        })?;
        let bad = |field: &str, reason: String| Err(Error::invalid(path, field, reason));
        if !fingerprint::source::is_plain_name(&e.experiment.id) {
            return bad(
                "experiment.id",
                "must be a plain file name (letters, digits, - _ .)".into(),
            );
        }
        if !e.claim.value.is_finite() || e.claim.sigma.is_some_and(|s| !s.is_finite()) {
            return bad("claim.value", "must be a finite number".into());
        }
        if e.published.iter().any(|p| !p.value.is_finite()) {
            return bad("published.value", "must be a finite number".into());
        }
        if e.nulls.samples == 0 || e.nulls.samples > MAX_SAMPLES {
            return bad(
                "nulls.samples",
                format!("must be between 1 and {MAX_SAMPLES}"),
            );
        }
        if e.vectors.roles.is_empty() {
            return bad("vectors.roles", "must name at least one role".into());
        }
        for r in &e.vectors.roles {
            let role: Role = r.parse().unwrap_or_else(|e| match e {});
            let inner = match &role {
                Role::Bias(inner) => inner.as_ref(),
                other => other,
            };
            if !NORM_ROLES.contains(inner) {
                return bad(
                    "vectors.roles",
                    format!("{r:?} is not a normalisation role (or its bias)"),
                );
            }
        }
        Ok(e)
    }

    /// The measures, the claim's first, each once.
    pub fn measures(&self) -> Vec<VectorMeasure> {
        let mut out = vec![self.vectors.measure];
        for &m in &self.vectors.compare {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    fn roles(&self) -> Vec<Role> {
        self.vectors
            .roles
            .iter()
            .map(|r| r.parse().unwrap_or_else(|e| match e {}))
            .collect()
    }
}

/// A model of the vector panel, its vectors read.
struct Member {
    id: String,
    root: String,
    /// `Some(base)` for a derived positive control.
    control_of: Option<String>,
    /// One entry per role of the file, in its order.
    vectors: Vec<LayerVectors>,
    width: usize,
}

/// One compared pair, one role.
struct PairRole {
    a: String,
    b: String,
    related: bool,
    why: String,
    width: usize,
    role: Role,
    /// One per measure, in [`VectorExperiment::measures`] order.
    per_measure: Vec<MeasureResult>,
}

struct MeasureResult {
    measure: VectorMeasure,
    layers: Vec<u32>,
    values: Vec<f64>,
    mean: f64,
    sigma: ClaimSigma,
    null: PermutationTest,
}

/// A reproduced vector claim.
pub struct Reproduced {
    /// The experiment id (the report's directory name).
    pub id: String,
    /// The report.
    pub report: rm::Report,
    /// One line for the terminal.
    pub headline: String,
}

fn read_vectors(
    fp: &Fingerprint,
    roles: &[Role],
    stack: Stack,
    path: &Path,
) -> Result<Vec<LayerVectors>> {
    roles
        .iter()
        .map(|role| {
            LayerVectors::from_fingerprint(fp, role, None)
                .or_else(|_| LayerVectors::from_fingerprint(fp, role, Some(stack)))
                .map_err(|e| Error::invalid(path, "vectors", e.to_string()))
        })
        .collect()
}

fn width_of(v: &[LayerVectors], path: &Path) -> Result<usize> {
    let widths: Vec<Option<usize>> = v.iter().map(LayerVectors::width).collect();
    match widths.first() {
        Some(Some(w)) if widths.iter().all(|x| *x == Some(*w)) => Ok(*w),
        _ => Err(Error::invalid(
            path,
            "vectors",
            format!("the vectors do not share one width ({widths:?})"),
        )),
    }
}

/// Analyse the vector-claim file at `path` and build its report.
pub fn reproduce(path: &Path) -> Result<Reproduced> {
    let exp = VectorExperiment::load(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut inputs = Inputs::default();
    inputs.record(path, "the experiment file")?;
    let index_path = dir.join(&exp.panel.index);
    inputs.record(&index_path, "the vector panel's index (lineage labels)")?;
    let index = PanelIndex::load(&index_path)?;
    let roles = exp.roles();
    let mut members = Vec::new();
    for m in &index.model {
        let p = PanelIndex::fingerprint_path(&index_path, &m.id);
        if !p.is_file() {
            return Err(Error::Missing {
                path: p,
                hint: "run `just baselines` (nullprint baselines --vectors)",
            });
        }
        let fp = inputs.fingerprint(&p, &format!("vector fingerprint of {}", m.id))?;
        let vectors = read_vectors(&fp, &roles, exp.vectors.stack, &p)?;
        let width = width_of(&vectors, &p)?;
        members.push(Member {
            id: m.id.clone(),
            root: m.root.clone(),
            control_of: None,
            vectors,
            width,
        });
    }
    if let Some(c) = &exp.panel.controls {
        let cpath = dir.join(c);
        inputs.record(&cpath, "the vector panel's positive controls")?;
        for c in ControlsIndex::load(&cpath)? {
            let Some(base) = index.model.iter().find(|m| m.id == c.base) else {
                return Err(Error::invalid(
                    &cpath,
                    "control.base",
                    format!("{:?} is not in {}", c.base, index_path.display()),
                ));
            };
            let p = ControlsIndex::fingerprint_path(&cpath, &c.id);
            if !p.is_file() {
                return Err(Error::Missing {
                    path: p,
                    hint: "run `just baselines` (nullprint baselines --vectors)",
                });
            }
            let fp = inputs.fingerprint(&p, &format!("vector fingerprint of control {}", c.id))?;
            let derived = fp.model.derived.as_ref();
            if derived.map(|d| (&d.base, d.seed)) != Some((&c.base, c.seed)) {
                return Err(Error::Stale {
                    path: p,
                    reason: format!(
                        "its derivation record does not say {} with seed {} (stale: run `just baselines`)",
                        c.base, c.seed
                    ),
                });
            }
            let vectors = read_vectors(&fp, &roles, exp.vectors.stack, &p)?;
            let width = width_of(&vectors, &p)?;
            members.push(Member {
                id: c.id.clone(),
                root: base.root.clone(),
                control_of: Some(c.base.clone()),
                vectors,
                width,
            });
        }
    }
    let measures = exp.measures();
    let mut pairs = Vec::new();
    let mut k = 0u64;
    for i in 0..members.len() {
        for j in i + 1..members.len() {
            let (a, b) = (&members[i], &members[j]);
            if a.width != b.width {
                continue;
            }
            let related = a.root == b.root;
            let why = match (&a.control_of, &b.control_of) {
                (_, Some(base)) | (Some(base), _) if related => {
                    format!("derived by nullprint from {base}")
                }
                _ if related => format!("same root ({})", a.root),
                _ => format!("different roots ({} / {})", a.root, b.root),
            };
            for (ri, role) in roles.iter().enumerate() {
                let (va, vb) = (&a.vectors[ri], &b.vectors[ri]);
                let mut per_measure = Vec::new();
                for &m in &measures {
                    let what = format!("{} vs {}, {role}, {m}", a.id, b.id);
                    let s = same_layer(va, vb, m).map_err(Error::statistic(what.clone()))?;
                    let sigma = claim_sigma(va, vb, m, exp.vectors.baseline)
                        .map_err(Error::statistic(what.clone()))?;
                    let null = permutation::test(
                        va,
                        vb,
                        m,
                        exp.nulls.samples,
                        child_seed(exp.nulls.seed, k),
                    )
                    .map_err(Error::statistic(what))?;
                    k += 1;
                    per_measure.push(MeasureResult {
                        measure: m,
                        layers: s.layers,
                        values: s.values,
                        mean: s.mean,
                        sigma,
                        null,
                    });
                }
                pairs.push(PairRole {
                    a: a.id.clone(),
                    b: b.id.clone(),
                    related,
                    why: why.clone(),
                    width: a.width,
                    role: role.clone(),
                    per_measure,
                });
            }
        }
    }
    if !pairs.iter().any(|p| !p.related) {
        return Err(Error::invalid(
            &index_path,
            "model",
            "no two unrelated models share a width: the panel has no null pair",
        ));
    }
    let report = build_report(&exp, path, &pairs, &measures, inputs)?;
    let headline = headline(&exp, &pairs);
    Ok(Reproduced {
        id: exp.experiment.id.clone(),
        report,
        headline,
    })
}

fn pair_name(p: &PairRole) -> String {
    format!("{} vs {}", p.a, p.b)
}

fn null_name(p: &PairRole, m: VectorMeasure) -> String {
    format!("permutation, {}: {}, {}", m.name(), pair_name(p), p.role)
}

fn result_of(p: &PairRole, m: VectorMeasure) -> &MeasureResult {
    p.per_measure
        .iter()
        .find(|r| r.measure == m)
        .expect("every pair has every measure")
}

fn range(xs: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = crate::verdict::min_max(xs);
    (lo <= hi).then_some((lo, hi))
}

fn fmt_range(r: Option<(f64, f64)>) -> String {
    match r {
        Some((lo, hi)) if lo == hi => format!("{lo:.3}"),
        Some((lo, hi)) => format!("{lo:.3} to {hi:.3}"),
        None => "none".into(),
    }
}

fn headline(exp: &VectorExperiment, pairs: &[PairRole]) -> String {
    let m = exp.vectors.measure;
    let unrelated = range(
        pairs
            .iter()
            .filter(|p| !p.related)
            .map(|p| result_of(p, m).mean),
    );
    format!(
        "{}: claimed {} {} ({} vs {}); real unrelated pairs here: {} (same-layer means over {} pair-roles)",
        exp.experiment.id,
        m.describe(),
        exp.claim.value,
        exp.claim.model_a,
        exp.claim.model_b,
        fmt_range(unrelated),
        pairs.iter().filter(|p| !p.related).count()
    )
}

fn published(exp: &VectorExperiment) -> Vec<rm::Published> {
    exp.published
        .iter()
        .enumerate()
        .map(|(i, p)| rm::Published {
            id: format!("published-{}", i + 1),
            label: p.label.clone(),
            short_label: p.short.clone().unwrap_or_else(|| {
                p.label
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
            value: Some(p.value),
            text: None,
            citation: rm::Citation {
                source: p.citation.clone(),
                url: None,
            },
        })
        .collect()
}

fn build_report(
    exp: &VectorExperiment,
    path: &Path,
    pairs: &[PairRole],
    measures: &[VectorMeasure],
    inputs: Inputs,
) -> Result<rm::Report> {
    let claim_m = exp.vectors.measure;
    let published = published(exp);
    let mut nulls = Vec::new();
    let mut seeds = Vec::new();
    for p in pairs {
        for r in &p.per_measure {
            let tested = rm::Mark::Computed {
                label: format!(
                    "same-layer mean, {} ({})",
                    pair_name(p),
                    if p.related { "related" } else { "unrelated" }
                ),
                value: r.mean,
            };
            let mut row = null_row(&r.null.result, tested, &[]);
            row.name = null_name(p, r.measure);
            nulls.push(row);
            seeds.push(rm::Seed {
                label: null_name(p, r.measure),
                value: r.null.result.seed.unwrap_or(exp.nulls.seed),
            });
        }
    }
    seeds.insert(
        0,
        rm::Seed {
            label: "master seed of the permutation nulls (each null's seed is a child of it)"
                .into(),
            value: exp.nulls.seed,
        },
    );

    // How often real unrelated pairs reach the claimed value.
    let unrelated: Vec<&PairRole> = pairs.iter().filter(|p| !p.related).collect();
    let means: Vec<f64> = unrelated
        .iter()
        .map(|p| result_of(p, claim_m).mean)
        .collect();
    let per_layer: Vec<f64> = unrelated
        .iter()
        .flat_map(|p| result_of(p, claim_m).values.iter().copied())
        .collect();
    let mut rows = Vec::new();
    for (label, scores) in [
        ("same-layer mean of an unrelated pair and role", &means),
        ("one layer of an unrelated pair", &per_layer),
    ] {
        let r = &rates_at_or_above(scores, &[exp.claim.value])
            .map_err(Error::statistic("rate of the claimed value"))?[0];
        rows.push(rm::RateRow {
            label: format!("{label}, at or above the claimed {}", exp.claim.value),
            threshold: r.threshold,
            threshold_source: Some("claim".into()),
            count: r.count,
            n: r.n,
            rate: Some(r.rate),
            interval: Some(interval(r.interval)),
        });
    }
    let fpr = rm::RateTable {
        name: "unrelated-at-claimed-value".into(),
        title: format!(
            "How often real unrelated models reach the claimed {}",
            claim_m.describe()
        ),
        population: format!(
            "{} unrelated (pair, role) combinations of equal width ({} per-layer values)",
            means.len(),
            per_layer.len()
        ),
        measure: format!("{} of same-role normalisation weights", claim_m.describe()),
        counts: None,
        rows,
    };

    let mut tables = vec![
        pairs_table(exp, pairs, measures),
        layers_table(pairs, measures),
    ];
    tables.push(sigma_table(exp, pairs, measures));

    let mut figures = Vec::new();
    let first_role = &exp.roles()[0];
    for &m in measures {
        let panels: Vec<rm::NullPanel> = pairs
            .iter()
            .filter(|p| &p.role == first_role)
            .map(|p| rm::NullPanel {
                null: null_name(p, m),
                samples: result_of(p, m).null.samples.clone(),
                marks: if m == claim_m {
                    vec![rm::Mark::Published { id: "claim".into() }]
                } else {
                    Vec::new()
                },
            })
            .collect();
        figures.push(rm::Figure {
            name: format!("permutation-{}", m.name()),
            title: format!(
                "{}: the dimension-permutation null of each pair ({first_role})",
                m.describe()
            ),
            caption: format!(
                "Each panel: the same-layer mean {} of one pair after randomly permuting the \
                 dimensions of the second model ({} draws), which keeps every vector's values \
                 and destroys any shared weights; the pair's observed value is marked{}.",
                m.describe(),
                exp.nulls.samples,
                if m == claim_m {
                    ", with the claimed value"
                } else {
                    ""
                }
            ),
            kind: rm::FigureKind::NullDistributions(rm::NullFigure {
                x_label: format!("same-layer mean {}", m.describe()),
                panels,
            }),
        });
    }

    let claim = rm::Published {
        id: "claim".into(),
        label: format!(
            "{} vs {}, same-layer {} of normalisation weights",
            exp.claim.model_a,
            exp.claim.model_b,
            claim_m.describe()
        ),
        short_label: "claimed".into(),
        value: Some(exp.claim.value),
        text: None,
        citation: rm::Citation {
            source: exp.claim.citation.clone(),
            url: None,
        },
    };
    let provenance = rm::Provenance {
        tool: "nullprint".into(),
        version: fingerprint::build::version().into(),
        command_line: vec![
            "nullprint".into(),
            "reproduce".into(),
            path.display().to_string(),
        ],
        reproduce: vec![
            "pip install rust-just   # or: cargo install just".into(),
            format!(
                "just reproduce {}        # from the committed vector fingerprints",
                exp.experiment.id
            ),
            "just models all && just baselines   # optional: recompute them from the weights"
                .into(),
        ],
        seeds,
        inputs: inputs.0,
        environment: vec![
            rm::KeyValue {
                key: "claimed measure".into(),
                value: claim_m.name().into(),
            },
            rm::KeyValue {
                key: "within-model baseline".into(),
                value: exp.vectors.baseline.describe().into(),
            },
            rm::KeyValue {
                key: "roles".into(),
                value: exp.vectors.roles.join(", "),
            },
        ],
        timestamp: None,
    };
    let report = rm::Report {
        schema_version: rm::SCHEMA_VERSION,
        title: exp.experiment.title.clone(),
        banner: None,
        provenance,
        claim: rm::Claim {
            text: format!(
                "{} Claimed conclusion: {} Question: {}",
                exp.claim.description, exp.claim.conclusion, exp.experiment.question
            ),
            statistic: claim,
        },
        verdict: verdict(exp, pairs),
        published,
        computed: rm::Computed {
            nulls,
            false_positive_rates: vec![fpr],
            power: Vec::new(),
            specification_curve: Vec::new(),
            panel: Vec::new(),
        },
        figures,
        tables,
    };
    report.validate()?;
    Ok(report)
}

fn text(s: impl Into<String>) -> rm::Cell {
    rm::Cell::Text(s.into())
}

fn pairs_table(
    exp: &VectorExperiment,
    pairs: &[PairRole],
    measures: &[VectorMeasure],
) -> rm::Table {
    let mut headers: Vec<String> = ["pair", "relation", "width", "role", "layers"]
        .map(String::from)
        .to_vec();
    for m in measures {
        headers.push(format!("{} (same-layer mean)", m.describe()));
        headers.push(format!("{} per layer (min to max)", m.describe()));
        headers.push(format!("permutation p ({})", m.name()));
        headers.push(format!("permutation null median ({})", m.name()));
    }
    let rows = pairs
        .iter()
        .map(|p| {
            let mut row = vec![
                text(pair_name(p)),
                text(format!(
                    "{}: {}",
                    if p.related { "related" } else { "unrelated" },
                    p.why
                )),
                rm::Cell::Number(p.width as f64),
                text(p.role.to_string()),
                rm::Cell::Number(p.per_measure[0].layers.len() as f64),
            ];
            for &m in measures {
                let r = result_of(p, m);
                let mut sorted = r.null.samples.clone();
                sorted.sort_by(f64::total_cmp);
                row.push(rm::Cell::Number(r.mean));
                row.push(text(fmt_range(range(r.values.iter().copied()))));
                row.push(text(report::fmt::p_value(
                    Some(r.null.result.p),
                    Some(r.null.result.log10_p),
                )));
                row.push(rm::Cell::Number(sorted[sorted.len() / 2]));
            }
            row
        })
        .collect();
    rm::Table {
        name: "pairs".into(),
        title: "Every pair of equal width: same-layer means and the permutation null".into(),
        caption: format!(
            "Pairs of the vector panel whose normalisation vectors have one width; related = \
             same root in the index (or a checkpoint derived by nullprint). Each p is the \
             dimension-permutation null's ({} draws, upper tail, Monte-Carlo error in the nulls \
             table).",
            exp.nulls.samples
        ),
        headers,
        rows,
    }
}

fn layers_table(pairs: &[PairRole], measures: &[VectorMeasure]) -> rm::Table {
    let mut headers: Vec<String> = ["pair", "relation", "role", "layer"]
        .map(String::from)
        .to_vec();
    headers.extend(measures.iter().map(|m| m.describe().to_string()));
    let mut rows = Vec::new();
    for p in pairs {
        for (li, layer) in p.per_measure[0].layers.iter().enumerate() {
            let mut row = vec![
                text(pair_name(p)),
                text(if p.related { "related" } else { "unrelated" }),
                text(p.role.to_string()),
                rm::Cell::Number(*layer as f64),
            ];
            row.extend(
                measures
                    .iter()
                    .map(|&m| rm::Cell::Number(result_of(p, m).values[li])),
            );
            rows.push(row);
        }
    }
    rm::Table {
        name: "per-layer".into(),
        title: "Per layer".into(),
        caption: "Each measure at each layer index both models have (the published method \
                  compares layer i of one model with layer i of the other)."
            .into(),
        headers,
        rows,
    }
}

fn sigma_table(
    exp: &VectorExperiment,
    pairs: &[PairRole],
    measures: &[VectorMeasure],
) -> rm::Table {
    let headers = [
        "pair",
        "relation",
        "role",
        "measure",
        "same-layer mean",
        "within-model baseline mean",
        "baseline sd (ddof 1)",
        "baseline values",
        "claim's sigma",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    for p in pairs {
        for &m in measures {
            let s = &result_of(p, m).sigma;
            rows.push(vec![
                text(pair_name(p)),
                text(if p.related { "related" } else { "unrelated" }),
                text(p.role.to_string()),
                text(m.describe()),
                rm::Cell::Number(s.same_layer_mean),
                rm::Cell::Number(s.baseline_mean),
                rm::Cell::Number(s.baseline_sd),
                rm::Cell::Number(s.baseline_n as f64),
                rm::Cell::Number(s.sigma),
            ]);
        }
    }
    rm::Table {
        name: "claim-sigma".into(),
        title:
            "The claim's own arithmetic: (same-layer mean - within-model mean) / within-model sd"
                .into(),
        caption: format!(
            "The within-model baseline is {} of each model of the pair, pooled; its sd is \
             taken as the yardstick. It measures how alike a model's own layers are, not how \
             far unrelated models' values spread, so it is not a null: compare the sigma of \
             the unrelated pairs here with the published {}.",
            exp.vectors.baseline.describe(),
            exp.claim
                .sigma
                .map(|s| format!("{s} sigma"))
                .unwrap_or_else(|| "figure".into())
        ),
        headers,
        rows,
    }
}

fn verdict(exp: &VectorExperiment, pairs: &[PairRole]) -> rm::Verdict {
    let claim_m = exp.vectors.measure;
    let unrelated: Vec<&PairRole> = pairs.iter().filter(|p| !p.related).collect();
    let related: Vec<&PairRole> = pairs.iter().filter(|p| p.related).collect();
    let u_means = range(unrelated.iter().map(|p| result_of(p, claim_m).mean));
    let u_layers = range(
        unrelated
            .iter()
            .flat_map(|p| result_of(p, claim_m).values.iter().copied()),
    );
    let u_perm = range(
        unrelated
            .iter()
            .flat_map(|p| result_of(p, claim_m).null.samples.iter().copied()),
    );
    let u_raw_p = range(
        unrelated
            .iter()
            .map(|p| result_of(p, claim_m).null.result.p),
    );
    let u_sigma = range(unrelated.iter().map(|p| result_of(p, claim_m).sigma.sigma));
    let u_pairs: Vec<String> = {
        let mut v: Vec<String> = unrelated.iter().map(|p| pair_name(p)).collect();
        v.dedup();
        v
    };
    let centred: Option<VectorMeasure> = exp
        .measures()
        .into_iter()
        .find(|&m| m == VectorMeasure::CentredCosine && m != claim_m);
    let centred_sentence = match centred {
        Some(c) => {
            let rel = range(related.iter().map(|p| result_of(p, c).mean));
            let unr = range(unrelated.iter().map(|p| result_of(p, c).mean));
            let rel_p = range(related.iter().map(|p| result_of(p, c).null.result.p));
            let unr_p = range(unrelated.iter().map(|p| result_of(p, c).null.result.p));
            format!(
                " The centred cosine separates them: related pairs (same root, or derived by \
                 nullprint) {} with permutation p {}, unrelated pairs {} with p {}.",
                fmt_range(rel),
                fmt_p_range(rel_p),
                fmt_range(unr),
                fmt_p_range(unr_p),
            )
        }
        None => String::new(),
    };
    let answer = format!(
        "Cannot tell: the weights of {} and {} are not on this machine, and the published {} \
         of {} is what real unrelated models of equal width reach here ({}), so its level \
         decides nothing either way.",
        exp.claim.model_a,
        exp.claim.model_b,
        claim_m.describe(),
        exp.claim.value,
        fmt_range(u_means),
    );
    let mut findings = vec![
        crate::verdict::finding(
            format!(
                "Unrelated pairs of equal width: same-layer {} {} (single layers {}); \
                 permutation p {}, so none is evidence of shared weights.",
                claim_m.describe(),
                fmt_range(u_means),
                fmt_range(u_layers),
                fmt_p_range(u_raw_p),
            ),
            "table-pairs",
            "pairs table",
        ),
        crate::verdict::finding(
            format!(
                "The claim's sigma arithmetic gives these unrelated pairs {} sigma.",
                match u_sigma {
                    Some((lo, hi)) => format!("{lo:.1} to {hi:.1}"),
                    None => "no".into(),
                }
            ),
            "table-claim-sigma",
            "sigma table",
        ),
    ];
    if let Some(c) = centred {
        findings.push(crate::verdict::finding(
            format!(
                "The centred cosine separates related pairs ({}) from unrelated ones ({}).",
                fmt_range(range(related.iter().map(|p| result_of(p, c).mean))),
                fmt_range(range(unrelated.iter().map(|p| result_of(p, c).mean))),
            ),
            "table-pairs",
            "pairs table",
        ));
    }
    rm::Verdict {
        answer,
        findings,
        figure: None,
        claimed: format!(
            "{} vs {}: same-layer {} of normalisation weights {}, against a within-model \
             baseline of different layers{}; concluded: {}",
            exp.claim.model_a,
            exp.claim.model_b,
            claim_m.describe(),
            exp.claim.value,
            exp.claim
                .sigma
                .map(|s| format!(" ({s} sigma)"))
                .unwrap_or_default(),
            exp.claim.conclusion
        ),
        nulls_say: format!(
            "Real unrelated models of equal width ({}) reach a same-layer {} of {} (single \
             layers {}), against the claimed {}. Permuting one model's dimensions, which \
             destroys any shared weights and keeps every value, leaves it at {} (permutation p \
             {}): a raw cosine near the claimed value is what vectors with no shared \
             dimensions at all give, so its level says nothing about shared weights. The claim's sigma \
             arithmetic gives these unrelated pairs {} sigma.{}",
            u_pairs.join(", "),
            claim_m.describe(),
            fmt_range(u_means),
            fmt_range(u_layers),
            exp.claim.value,
            fmt_range(u_perm),
            fmt_p_range(u_raw_p),
            match u_sigma {
                Some((lo, hi)) => format!("{lo:.1} to {hi:.1}"),
                None => "no".into(),
            },
            centred_sentence
        ),
        cannot_say: format!(
            "The weights of {} and {} are not on this machine: this replay neither recomputes \
             the published value nor decides their lineage. It shows that the published \
             measure and its within-model sigma cannot decide it, and which measure can; the \
             published centred figures of the same models are listed with their sources. The \
             pairs here are small encoders and one small decoder (widths {}), not \
             4096-wide MoE decoders, and there are few unrelated pairs ({} pair-roles).",
            exp.claim.model_a,
            exp.claim.model_b,
            {
                let mut w: Vec<usize> = pairs.iter().map(|p| p.width).collect();
                w.sort_unstable();
                w.dedup();
                w.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            unrelated.len()
        ),
    }
}

fn fmt_p_range(r: Option<(f64, f64)>) -> String {
    match r {
        Some((lo, hi)) if lo == hi => format!("= {lo:.3}"),
        Some((lo, hi)) => format!("{lo:.3} to {hi:.3}"),
        None => "none".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[experiment]
id = "v"
title = "t"
question = "q"
[claim]
description = "d"
model_a = "A"
model_b = "B"
value = 0.989
sigma = 182
conclusion = "c"
citation = "s"
[vectors]
measure = "cosine"
compare = ["centred-cosine"]
roles = ["attn_norm", "mlp_norm"]
baseline = "first-layer"
[panel]
index = "index.toml"
[nulls]
seed = 1
samples = 99
"#;

    fn load(text: &str) -> Result<VectorExperiment> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.toml");
        std::fs::write(&p, text).unwrap();
        assert_eq!(is_vector_experiment(&p), text.contains("[vectors]"));
        VectorExperiment::load(&p)
    }

    #[test]
    fn file_is_typed_and_checked() {
        let e = load(GOOD).unwrap();
        assert_eq!(
            e.measures(),
            vec![VectorMeasure::Cosine, VectorMeasure::CentredCosine]
        );
        assert_eq!(e.vectors.stack, Stack::Encoder);
        for (from, to, field) in [
            (
                "roles = [\"attn_norm\", \"mlp_norm\"]",
                "roles = [\"attn_q\"]",
                "vectors.roles",
            ),
            (
                "roles = [\"attn_norm\", \"mlp_norm\"]",
                "roles = []",
                "vectors.roles",
            ),
            ("samples = 99", "samples = 0", "nulls.samples"),
            ("measure = \"cosine\"", "measure = \"dot\"", "measure"),
            (
                "baseline = \"first-layer\"",
                "baseline = \"some\"",
                "baseline",
            ),
            ("id = \"v\"", "id = \"../v\"", "experiment.id"),
        ] {
            let err = load(&GOOD.replace(from, to)).unwrap_err().to_string();
            assert!(err.contains(field), "{to}: {err}");
            assert!(err.contains("e.toml"), "{to}: {err}");
        }
        assert!(load(&GOOD.replace("[vectors]", "[vectorz]")).is_err());
        assert!(load(&GOOD.replace(
            "roles = [\"attn_norm\", \"mlp_norm\"]",
            "roles = [\"mlp_norm_bias\"]"
        ))
        .is_ok());
    }
}
