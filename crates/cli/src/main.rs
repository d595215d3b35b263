//! `nullprint`: test model-lineage fingerprint claims against chance.
//!
//! The binary is thin: it parses arguments, calls the library crates and writes their output.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod cmd;
mod progress;
mod save;

/// The most worker threads `--threads` starts: more than any machine nullprint runs on has
/// cores, and each costs a stack; `--threads 100000` would spend a minute starting threads.
const MAX_THREADS: usize = 256;

fn main() -> ExitCode {
    // Before any other thread: SIGINT/SIGTERM/SIGHUP remove half-written files, then end us.
    if let Err(e) = output::install_signal_cleanup() {
        eprintln!("nullprint: warning: temporary files may be left behind on Ctrl-C: {e}");
    }
    // Every fingerprint, derivation record and report names the build `--version` prints.
    fingerprint::build::set(env!("NULLPRINT_BUILD"));
    let cli = args::Cli::parse();
    let verbose = cli.verbose;
    if let Some(mut n) = cli.threads {
        if n > MAX_THREADS {
            eprintln!("nullprint: warning: --threads {n} capped at {MAX_THREADS}");
            n = MAX_THREADS;
        }
        // Results never depend on the thread count; this only bounds CPU use.
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
        {
            eprintln!("nullprint: error: starting {n} worker threads (--threads): {e}");
            return ExitCode::from(1);
        }
    }
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let chain = error_chain(&e);
            if verbose {
                eprintln!("nullprint: error: {}", chain[0]);
                for cause in &chain[1..] {
                    eprintln!("  caused by: {cause}");
                }
            } else {
                // One line: the whole chain, joined.
                eprintln!("nullprint: error: {}", chain.join(": "));
            }
            ExitCode::from(1)
        }
    }
}

/// The messages of an error chain, leaving out a cause whose text the message before it
/// already ends with (an error that prints its source and also returns it as `source()`).
fn error_chain(e: &anyhow::Error) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in e.chain() {
        let text = c.to_string();
        if out.last().is_some_and(|prev| prev.ends_with(&text)) {
            continue;
        }
        out.push(text);
    }
    out
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
