//! `nullprint man [-o DIR]`: roff man pages generated from the clap definitions, so the man page
//! never disagrees with `--help`. `nullprint.1` lists every subcommand; with `-o`, each
//! subcommand also gets its own `nullprint-NAME.1` with its options.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};
use clap::CommandFactory;

use crate::args::{Cli, ManArgs};
use crate::save::write_new;

pub fn run(a: ManArgs) -> Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    let Some(dir) = a.output else {
        std::io::stdout().lock().write_all(&page(&cmd)?)?;
        return Ok(());
    };
    let mut pages = vec![("nullprint.1".to_owned(), page(&cmd)?)];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("nullprint-{}", sub.get_name());
        let sub = sub
            .clone()
            .display_name(&name)
            .version(env!("NULLPRINT_BUILD"))
            .bin_name(format!("nullprint {}", sub.get_name()));
        pages.push((format!("{name}.1"), page(&sub)?));
    }
    if !a.force {
        if let Some((name, _)) = pages.iter().find(|(n, _)| dir.join(n).exists()) {
            bail!(
                "{} exists; pass --force to overwrite it",
                dir.join(name).display()
            );
        }
    }
    for (name, bytes) in &pages {
        write_new(&dir.join(name), bytes, true)?;
    }
    eprintln!(
        "wrote {} man pages to {}",
        pages.len(),
        Path::new(&dir).display()
    );
    Ok(())
}

fn page(cmd: &clap::Command) -> Result<Vec<u8>> {
    let mut roff = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut roff)?;
    Ok(roff)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use crate::args::Cli;

    /// The main page names every subcommand (and so points at each subcommand's page).
    #[test]
    fn main_page_names_every_subcommand() {
        let mut cmd = Cli::command();
        cmd.build();
        let page = String::from_utf8(super::page(&cmd).unwrap()).unwrap();
        assert!(page.starts_with(".ie"), "{page}");
        assert!(page.contains(".TH nullprint 1"), "{page}");
        assert!(page.contains(env!("NULLPRINT_BUILD")), "{page}");
        let subs: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
        assert!(subs.len() >= 12, "{subs:?}");
        for sub in subs {
            assert!(
                page.contains(&format!("nullprint\\-{sub}(1)")),
                "nullprint.1 does not name {sub}"
            );
        }
    }
}
