//! One module per subcommand.

use anyhow::Result;

use crate::args::{Cli, Command};

mod baselines;
mod calibrate;
mod common;
mod compare;
mod completions;
mod derive;
mod fingerprint;
mod lab;
mod man;
mod matrix;
mod nulltest;
mod panel;
mod reproduce;
mod roles;
mod trace;

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fingerprint(a) => fingerprint::run(a),
        Command::Roles(a) => roles::run(a),
        Command::Baselines(a) => baselines::run(a),
        Command::Derive(a) => derive::run(a),
        Command::Reproduce(a) => reproduce::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Null(a) => nulltest::run(a),
        Command::Matrix(a) => matrix::run(a),
        Command::Trace(a) => trace::run(a),
        Command::Calibrate(a) => calibrate::run(a),
        Command::Panel(c) => panel::run(c),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
        Command::Lab(a) => lab::run(a),
    }
}

/// The command line as typed, for provenance.
pub fn command_line() -> Vec<String> {
    std::env::args().collect()
}
