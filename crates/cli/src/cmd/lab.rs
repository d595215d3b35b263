//! `nullprint lab run LAB.toml`: train what is missing, fingerprint into baselines/lab/NAME/.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lab::run::{Observer, Paths};
use lab::spec::Lab;
use lab::train::Step;

use crate::args::{LabAction, LabArgs};

pub fn run(a: LabArgs) -> Result<()> {
    let LabAction::Run(a) = a.action;
    if a.train_threads == 0 {
        bail!("--train-threads must be at least 1");
    }
    // candle's CPU kernels read their thread count from RAYON_NUM_THREADS on every call.
    std::env::set_var("RAYON_NUM_THREADS", a.train_threads.to_string());
    let spec = Lab::load(&a.lab)?;
    let models = match a.models {
        Some(m) => m,
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/nullprint-models"))
            .context("no --models and no $HOME")?,
    };
    let name = spec.spec.name.clone();
    let paths = Paths {
        corpus: models.join(&spec.spec.corpus.file),
        scratch: models.join("lab").join(&name),
        baselines: a
            .output
            .unwrap_or_else(|| PathBuf::from("baselines/lab").join(&name)),
    };
    let n = spec.model_names().len();
    eprintln!(
        "lab {name}: {n} models ({} from scratch, {} derived families); checkpoints in {}",
        spec.scratch.len(),
        spec.derived.len(),
        paths.scratch.display()
    );
    let mut obs = Bar::default();
    let started = std::time::Instant::now();
    let summary = lab::run::run(
        &spec,
        &paths,
        &super::command_line(),
        a.refingerprint,
        &mut obs,
    )
    .with_context(|| format!("lab {}", a.lab.display()))?;
    if let Some(b) = obs.bar.take() {
        b.finish_and_clear();
    }
    eprintln!(
        "lab {name}: trained {} models, reused {}, wrote {} fingerprints into {}",
        summary.trained.len(),
        summary.reused.len(),
        summary.fingerprinted.len(),
        paths.baselines.display()
    );
    if !summary.trained.is_empty() {
        // Wall time: a derived family's snapshots share one run, so their recorded seconds
        // do not add up.
        eprintln!(
            "lab {name}: training and fingerprinting took {:.0} s (per model: {}/lab.log)",
            started.elapsed().as_secs_f64(),
            paths.scratch.display()
        );
    }
    let t = std::time::Instant::now();
    let ran = lab::weight_tests::run_tests(&spec, &paths, a.refingerprint, &mut obs)
        .with_context(|| format!("lab {}: weight-level tests", a.lab.display()))?;
    eprintln!(
        "lab {name}: {ran} weight-level tests run in {:.0} s, into {}",
        t.elapsed().as_secs_f64(),
        paths
            .baselines
            .join(lab::weight_tests::TRACE_FILE)
            .display()
    );
    Ok(())
}

/// A progress bar per model (loss and tokens/s) on a terminal, plain log lines otherwise.
#[derive(Default)]
struct Bar {
    bar: Option<ProgressBar>,
}

impl Observer for Bar {
    fn start(&mut self, model: &str, steps: usize) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if !std::io::stderr().is_terminal() {
            eprintln!("{model}: training, {steps} steps");
            return;
        }
        let b = ProgressBar::new(steps as u64);
        b.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps, {msg}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b.set_prefix(model.to_owned());
        self.bar = Some(b);
    }

    fn step(&mut self, model: &str, s: Step) {
        let msg = format!("loss {:.3}, {:.0} tokens/s", s.loss, s.tokens_per_s);
        match &self.bar {
            Some(b) => {
                b.set_position(s.step as u64);
                b.set_message(msg);
            }
            None if s.step % 50 == 0 || s.step == s.steps => {
                eprintln!("{model}: step {}/{}, {msg}", s.step, s.steps)
            }
            None => {}
        }
    }

    fn line(&mut self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }
}
