//! `nullprint panel build MANIFEST -o DIR [--shard I/N] [--sample N [--seed S]]`.

use std::io::IsTerminal;

use anyhow::{bail, Result};
use fingerprint::remote;
use fingerprint::sample::Sampling;
use indicatif::{ProgressBar, ProgressStyle};
use panel::{BuildOptions, Event, Manifest};

use crate::args::{PanelBuildArgs, PanelCommand};

pub fn run(c: PanelCommand) -> Result<()> {
    match c {
        PanelCommand::Build(a) => build(a),
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn build(a: PanelBuildArgs) -> Result<()> {
    let manifest = Manifest::load(&a.manifest)?;
    let sample = a.sample.map(|blocks| Sampling {
        blocks,
        seed: a.seed,
    });
    let mut config = remote::HttpConfig::default();
    if sample.is_some() {
        config.coalesce_gap = remote::SAMPLED_COALESCE_GAP;
    }
    let make = move || remote::Client::from_env(config.clone());
    let n = match a.shard {
        Some((i, n)) => manifest.shard(i, n).len(),
        None => manifest.model.len(),
    };
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(n as u64);
        b.set_style(
            ProgressStyle::with_template("[{bar:30}] {pos}/{len} models, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let totals = std::sync::Mutex::new((0u64, 0u64));
    let events = |e: Event<'_>| match e {
        Event::Start { id, .. } => {
            let (r, s) = *totals.lock().unwrap_or_else(|p| p.into_inner());
            bar.set_message(format!("{} read of {} ({id})", mb(r), mb(s)));
        }
        Event::Skipped { id } => {
            bar.inc(1);
            bar.println(format!("{id}: done earlier, verified"));
        }
        Event::Done { id, read, size } => {
            let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
            t.0 += read;
            t.1 += size;
            bar.inc(1);
            bar.println(format!("{id}: read {} of {}", mb(read), mb(size)));
        }
        Event::Failed { id, error } => {
            bar.inc(1);
            bar.println(format!("{id}: FAILED: {error}"));
        }
    };
    let name = a.manifest.file_name().map_or_else(
        || a.manifest.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let opts = BuildOptions {
        shard: a.shard,
        sample,
        manifest_name: name,
        client: &make,
        events: &events,
    };
    let s = panel::build(&manifest, &a.output, &opts)?;
    bar.finish_and_clear();
    eprintln!(
        "{}: {} models in this shard: {} built, {} already done, {} failed; read {} of the models' {} ({:.2}%); index.toml lists {}",
        a.output.display(),
        s.models,
        s.built.len(),
        s.skipped.len(),
        s.failed.len(),
        mb(s.bytes_read),
        mb(s.bytes_total),
        100.0 * s.bytes_read as f64 / s.bytes_total.max(1) as f64,
        s.indexed
    );
    if !s.failed.is_empty() {
        for e in &s.failed {
            eprintln!("nullprint: error: {e}");
        }
        bail!("{} of {} models failed", s.failed.len(), s.models);
    }
    Ok(())
}
