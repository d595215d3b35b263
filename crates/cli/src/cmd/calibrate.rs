//! `nullprint calibrate`: are the p-values uniform when the null is true? Simulates unrelated
//! curves (random walk plus a shared depth trend), tests them with every measure and null
//! (`null::calibrate`), and writes the report `experiment::calibration` builds.

use anyhow::Result;
use null::calibrate::{run_full, FullCalibration};

use crate::args::CalibrateArgs;

pub fn run(a: CalibrateArgs) -> Result<()> {
    let cfg = FullCalibration {
        replicates: a.replicates,
        samples: a.samples,
        seed: a.seed,
        ..FullCalibration::default()
    };
    let started = std::time::Instant::now();
    let results = run_full(&cfg)?;
    eprintln!(
        "calibrate: {} calibrations in {:.1} s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    let report = experiment::calibration::report(&cfg, &results)?;
    let written = crate::save::write_report(&a.output, &report, a.force)?;
    eprintln!("wrote {} ({} files)", a.output.display(), written);
    Ok(())
}
