//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Test model-lineage fingerprint claims against chance.
#[derive(Debug, Parser)]
/// `--version` names the git commit and features too (build.rs), as every provenance record does.
#[command(name = "nullprint", version = env!("NULLPRINT_BUILD"), about, long_about = None)]
pub struct Cli {
    /// Print the whole error chain on failure.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Worker threads (results are identical at any count).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute per-tensor statistics of one or more models.
    Fingerprint(FingerprintArgs),
    /// Print how each tensor of a model maps to canonical roles.
    Roles(RolesArgs),
    /// Recompute the baseline panel's fingerprints from the weights (verifying their hashes).
    Baselines(BaselinesArgs),
    /// Write a positive control: a model derived from real weights (noise, upcycling, layers).
    Derive(DeriveArgs),
    /// Replay a published claim (experiments/NAME.toml) and write its report.
    Reproduce(ReproduceArgs),
    /// Similarity of two fingerprints (or models), tested against nulls.
    Compare(CompareArgs),
    /// p-value of a published number against a panel or a published matrix.
    Null(NullArgs),
    /// Every pairwise similarity with p-values, BH q-values and Holm-adjusted p-values.
    Matrix(MatrixArgs),
    /// Weight-level tests: neuron-matching independence, depth alignment, MoE upcycling.
    Trace(TraceArgs),
    /// Check that every null's p-values are uniform on simulated unrelated curves.
    Calibrate(CalibrateArgs),
    /// Panels of hosted checkpoints: `panel build MANIFEST -o DIR`.
    #[command(subcommand)]
    Panel(PanelCommand),
    /// Print a shell completion script, e.g. `source <(nullprint completions bash)`.
    Completions(CompletionsArgs),
    /// Print the man page, or write one page per subcommand into a directory.
    Man(ManArgs),
    /// The seed lab: train small decoders (same recipe, other seeds; derived then trained).
    Lab(LabArgs),
}

/// `nullprint lab`.
#[derive(Debug, clap::Args)]
pub struct LabArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: LabAction,
}

/// `nullprint lab` subcommands.
#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Train the missing models of a lab file and fingerprint them into baselines/lab/NAME/.
    Run(LabRunArgs),
}

/// `nullprint lab run`.
#[derive(Debug, clap::Args)]
pub struct LabRunArgs {
    /// The lab file (labs/NAME.toml).
    pub lab: PathBuf,
    /// Models directory: the corpus is read from it, checkpoints go to MODELS/lab/NAME/.
    #[arg(long, env = "NULLPRINT_MODELS")]
    pub models: Option<PathBuf>,
    /// Where fingerprints and training records go [default: baselines/lab/NAME].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Training threads (candle CPU). Part of the recipe: checkpoints are bit-identical for
    /// one recipe, seed and thread count.
    #[arg(long, default_value_t = 1)]
    pub train_threads: usize,
    /// Fingerprint every checkpoint again and rerun every weight-level test, not only new ones.
    #[arg(long)]
    pub refingerprint: bool,
}

/// `nullprint panel ...`.
#[derive(Debug, Subcommand)]
pub enum PanelCommand {
    /// Fingerprint a manifest's checkpoints where they are hosted into a panel directory
    /// (resumable; `--shard I/N` for array jobs; the directory works with every null).
    Build(PanelBuildArgs),
}

/// `nullprint panel build`.
#[derive(Debug, clap::Args)]
pub struct PanelBuildArgs {
    /// The manifest, e.g. panels/open-llms.toml.
    pub manifest: PathBuf,
    /// The panel directory (created if absent; a second run skips what is done).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Build only shard I of N (0-based): every N-th entry from the I-th.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Estimate from a seeded sample of N blocks per tensor (see `fingerprint --sample`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    pub sample: Option<u64>,
    /// Seed of the --sample draw.
    #[arg(long, requires = "sample", default_value_t = 0)]
    pub seed: u64,
}

/// `nullprint completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `nullprint man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write nullprint.1 and nullprint-SUBCOMMAND.1 here instead of printing nullprint.1.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite existing pages.
    #[arg(long)]
    pub force: bool,
}

/// `nullprint calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Simulated unrelated pairs per (measure, null).
    #[arg(long, default_value_t = 2000)]
    pub replicates: usize,
    /// Monte-Carlo samples per surrogate null.
    #[arg(long, default_value_t = 999)]
    pub samples: usize,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 20_250_704)]
    pub seed: u64,
    /// Report directory.
    #[arg(short, long, default_value = "reports/calibration")]
    pub output: PathBuf,
    /// Replace an existing report.
    #[arg(long)]
    pub force: bool,
}

/// Which weight-level test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TraceTest {
    /// Permutation-robust independence test on MLP neurons (Zhu et al., ICML 2025).
    Csu,
    /// Which layers of B correspond to which of A (insertion, duplication, pruning).
    Align,
    /// Which experts of a MoE model copy a dense model's MLP.
    Upcycle,
    /// All that apply.
    All,
}

/// `nullprint trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// First model (weights: file, directory, repo id in the HF cache, ollama:NAME).
    pub a: String,
    /// Second model.
    pub b: String,
    /// Which test.
    #[arg(long, value_enum, default_value = "all")]
    pub test: TraceTest,
    /// Most hidden units matched per layer (seeded subsample beyond it, stated in the output).
    #[arg(long, default_value_t = 1024)]
    pub max_units: usize,
    /// Draws of each calibrated null (random rotations, random sign flips) per layer pair.
    #[arg(long, default_value_t = ::trace::csu::DEFAULT_NULL_DRAWS)]
    pub null_draws: usize,
    /// Seed of every sampled choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: TextOrJson,
}

/// Text for people, JSON for programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    /// Aligned text.
    Text,
    /// Pretty JSON.
    Json,
}

/// How curves are taken from fingerprints.
#[derive(Debug, Clone, clap::Args)]
pub struct CurveArgs {
    /// Similarity measure: honestagi, spearman, detrended, detrended2, diff.
    #[arg(long, default_value = "honestagi")]
    pub measure: String,
    /// Roles whose per-layer std curves are compared (default: attn_q,attn_k,attn_v,attn_o).
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Std convention: 0 (population, stored) or 1 (torch.std, as published).
    #[arg(long, default_value_t = 0)]
    pub ddof: u32,
    /// Encoder-decoder models: auto, encoder, decoder, encoder+decoder.
    #[arg(long, default_value = "auto")]
    pub stack: String,
}

/// `nullprint compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// First model: a fingerprint JSON or anything `fingerprint` accepts.
    pub a: String,
    /// Second model.
    pub b: String,
    /// Nulls: shuffle, circular, block[:L], surrogate[:ORDER] (repeatable); panel:DIR is
    /// --panel DIR.
    #[arg(long)]
    pub null: Vec<String>,
    /// Real models to test against: `builtin` (the baseline panel shipped with nullprint),
    /// a directory of fingerprints (labels from --labels or its index.toml), or `none`. The
    /// answer rests on this panel's p; surrogate p-values are calibrated on its unrelated pairs.
    #[arg(long, default_value = "builtin")]
    pub panel: String,
    /// Level of the answer (and of each surrogate null's stated size).
    #[arg(long, default_value_t = null::compare::DEFAULT_ALPHA)]
    pub alpha: f64,
    /// Monte-Carlo samples per surrogate null.
    #[arg(long, default_value_t = 10_000)]
    pub samples: usize,
    /// Seed of the Monte-Carlo nulls.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Lineage labels for a panel null (CSV: model,root or a,b,label).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// False-positive-rate thresholds for a panel null.
    #[arg(long)]
    pub threshold: Vec<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: TextOrJson,
    /// Measure and curve options.
    #[command(flatten)]
    pub curve: CurveArgs,
}

/// `nullprint null`.
#[derive(Debug, clap::Args)]
pub struct NullArgs {
    /// The published similarity to test.
    #[arg(long, allow_hyphen_values = true)]
    pub observed: f64,
    /// A directory of fingerprints (labels from --labels or its index.toml).
    #[arg(long)]
    pub panel: Option<PathBuf>,
    /// A published square similarity matrix (CSV; first row and column are model ids).
    #[arg(long)]
    pub matrix: Option<PathBuf>,
    /// Lineage labels (CSV: model,root or a,b,label).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Thresholds at which to report the false-positive rate (repeatable).
    #[arg(long)]
    pub threshold: Vec<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: TextOrJson,
    /// Measure and curve options (panels only).
    #[command(flatten)]
    pub curve: CurveArgs,
}

/// `nullprint matrix`.
#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    /// Fingerprint JSON files, directories of them, or models.
    #[arg(required = true)]
    pub fingerprints: Vec<String>,
    /// Lineage labels (CSV: model,root or a,b,label); without them every model is its own root.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: TextOrJson,
    /// Measure and curve options.
    #[command(flatten)]
    pub curve: CurveArgs,
}

/// `nullprint reproduce`.
#[derive(Debug, clap::Args)]
pub struct ReproduceArgs {
    /// The experiment file, e.g. experiments/honestagi.toml.
    pub experiment: PathBuf,
    /// Report directory (default: reports/<experiment id>).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Replace an existing report.
    #[arg(long)]
    pub force: bool,
    /// Recompute the experiment's published-panel summary from the published data on this
    /// machine and rewrite the committed file (`just published-summary`).
    #[arg(long)]
    pub write_published_summary: bool,
}

/// `nullprint baselines`.
#[derive(Debug, clap::Args)]
pub struct BaselinesArgs {
    /// The panel's index (lineage labels and expected weight hashes).
    #[arg(long, default_value = "baselines/index.toml")]
    pub index: PathBuf,
    /// Where the weights are (`just models all` puts them there).
    #[arg(long, env = "NULLPRINT_MODELS")]
    pub models: Option<PathBuf>,
    /// Only these model ids (panel models, or controls by id or by base).
    #[arg(long, value_delimiter = ',')]
    pub only: Option<Vec<String>>,
    /// The positive controls' index (models derived from panel weights).
    #[arg(long, default_value = "baselines/controls.toml")]
    pub controls: PathBuf,
    /// Skip the positive controls.
    #[arg(long)]
    pub no_controls: bool,
    /// Vector fingerprints instead: only the normalisation roles, with the values of their
    /// vectors (`norms`, `norms,biases`), e.g. for baselines/vectors/index.toml.
    #[arg(long, value_name = "KINDS")]
    pub vectors: Option<fingerprint::VectorKinds>,
    /// Where derived checkpoints are written while they are fingerprinted (then deleted).
    #[arg(long, env = "TMPDIR")]
    pub scratch: Option<PathBuf>,
    /// Overwrite existing fingerprints.
    #[arg(long)]
    pub force: bool,
}

/// Output format of `fingerprint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FingerprintFormat {
    /// The canonical JSON document.
    Json,
    /// One row per tensor.
    Csv,
}

/// `nullprint fingerprint`.
#[derive(Debug, clap::Args)]
pub struct FingerprintArgs {
    /// Model file, directory, shard index, `ollama:NAME[:TAG]`, Hugging Face repo id, or a
    /// model where it is hosted: `https://…` (safetensors, GGUF, shard index) or
    /// `hf://ORG/NAME[@REV][/FILE]`, read in HTTP ranges (attention roles by default).
    #[arg(required_unless_present = "list")]
    pub models: Vec<String>,
    /// Read more models from this file, one per line (`#` starts a comment).
    #[arg(long)]
    pub list: Option<PathBuf>,
    /// Take only share I of N of the models (0 <= I < N), e.g. `--shard $SLURM_ARRAY_TASK_ID/64`.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Output file (one model) or directory (several); stdout when absent.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
    /// Output format (default: from the output's extension, else json).
    #[arg(long, value_enum)]
    pub format: Option<FingerprintFormat>,
    /// Only these roles (comma-separated, e.g. attn_q,attn_k,attn_v,attn_o); all by default.
    #[arg(long, value_delimiter = ',')]
    pub roles: Option<Vec<String>>,
    /// Skip SHA-256 hashing of the weight files.
    #[arg(long)]
    pub no_hash: bool,
    /// Also keep the values of each layer's normalisation vectors (`norms`), and of their
    /// biases (`norms,biases`), hashed, for vector claims (e.g. LayerNorm cosines).
    #[arg(long, value_name = "KINDS")]
    pub vectors: Option<fingerprint::VectorKinds>,
    /// Recompute even when the fingerprint cache has this model.
    #[arg(long)]
    pub no_cache: bool,
    /// Download Hugging Face repo ids into the HF cache first (needs network).
    #[arg(long)]
    pub download: bool,
    /// Revision (branch, tag or commit) to download with `--download`.
    #[arg(long, requires = "download")]
    pub revision: Option<String>,
    /// Estimate every statistic from a seeded sample of N row-aligned blocks per tensor
    /// (each statistic then carries its standard error); local or remote.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    pub sample: Option<u64>,
    /// Seed of the --sample draw (the same seed reads the same bytes).
    #[arg(long, requires = "sample", default_value_t = 0)]
    pub seed: u64,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N, e.g. 3/64")?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("{i:?} is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("{n:?} is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= I < N"));
    }
    Ok((i, n))
}

/// `nullprint derive`.
#[derive(Debug, clap::Args)]
pub struct DeriveArgs {
    /// The base model: file, directory, or Hugging Face repo id in the local cache.
    pub model: String,
    /// What to do to the weights: `noise(rel=X)`, `upcycle(experts=N, rel=X)`,
    /// `insert(count=N, rel=X)` or `prune(count=N, rel=X)`; `rel` is the noise std relative to
    /// the base's median attention std.
    #[arg(long)]
    pub recipe: String,
    /// Seed of the noise (the output is identical byte for byte for a seed).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Element type of the derived weights: bf16, f16 or f32.
    #[arg(long, default_value = "bf16")]
    pub dtype: String,
    /// Output directory (gets model.safetensors, config.json, derivation.json).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace a derived model already in the output directory.
    #[arg(long)]
    pub force: bool,
}

/// `nullprint roles`.
#[derive(Debug, clap::Args)]
pub struct RolesArgs {
    /// Model file, directory, shard index, or Hugging Face repo id in the local cache.
    pub model: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
