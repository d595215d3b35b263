//! One module per subcommand.

use anyhow::Result;

use crate::args::{Cli, Command};

mod fingerprint;
mod roles;

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fingerprint(a) => fingerprint::run(a),
        Command::Roles(a) => roles::run(a),
    }
}

/// The command line as typed, for provenance.
pub fn command_line() -> Vec<String> {
    std::env::args().collect()
}
