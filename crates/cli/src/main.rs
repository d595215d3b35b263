//! `nullprint`: test model-lineage fingerprint claims against chance.
//!
//! The binary is thin: it parses arguments, calls the library crates and writes their output.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod cmd;
mod progress;
mod save;

fn main() -> ExitCode {
    // Every fingerprint, derivation record and report names the build `--version` prints.
    fingerprint::build::set(env!("NULLPRINT_BUILD"));
    let cli = args::Cli::parse();
    let verbose = cli.verbose;
    if let Some(n) = cli.threads {
        // Results never depend on the thread count; this only bounds CPU use.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            if verbose {
                eprintln!("nullprint: error: {e}");
                for cause in e.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            } else {
                // One line: the whole chain, joined.
                eprintln!("nullprint: error: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

/// A reader that stopped early (`| head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let kind = match (
            c.downcast_ref::<std::io::Error>(),
            c.downcast_ref::<serde_json::Error>(),
        ) {
            (Some(io), _) => Some(io.kind()),
            (None, Some(json)) => json.io_error_kind(),
            _ => None,
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}
