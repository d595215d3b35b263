//! `nullprint completions SHELL`: a completion script generated from the clap definitions, so
//! completions never disagree with `--help`.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};

pub fn run(a: CompletionsArgs) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), "nullprint", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(())
}
