//! `nullprint`: test model-lineage fingerprint claims against chance.
//!
//! The binary is thin: it parses arguments, calls the library crates and writes their output.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod cmd;
mod controls_index;
mod experiment;
mod output;
mod panel;
mod progress;

fn main() -> ExitCode {
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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
