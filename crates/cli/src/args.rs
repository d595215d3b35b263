//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Test model-lineage fingerprint claims against chance.
#[derive(Debug, Parser)]
#[command(name = "nullprint", version, about, long_about = None)]
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
    /// Model file, directory, shard index, or Hugging Face repo id in the local cache.
    #[arg(required = true)]
    pub models: Vec<String>,
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
    /// Download Hugging Face repo ids into the HF cache first (needs network).
    #[arg(long)]
    pub download: bool,
    /// Revision (branch, tag or commit) to download with `--download`.
    #[arg(long, requires = "download")]
    pub revision: Option<String>,
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
