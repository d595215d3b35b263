//! Run the full calibration ([`null::calibrate::run_full`]) and print a summary table; with a
//! path argument, also write every result (QQ data included) as JSON.
//!
//! ```text
//! cargo run --release -p nullprint-null --example calibrate -- [REPLICATES [SAMPLES [OUT.json]]]
//! ```

use null::calibrate::{run_full, FullCalibration};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = FullCalibration::default();
    if let Some(r) = args.first() {
        cfg.replicates = r.parse()?;
    }
    if let Some(s) = args.get(1) {
        cfg.samples = s.parse()?;
    }
    let t = std::time::Instant::now();
    let results = run_full(&cfg)?;
    println!(
        "{:<11} {:<18} {:>6} {:>8} {:>10} {:>8} {:>8} {:>8}",
        "measure", "null", "n", "KS D", "KS p", "p<=.01", "p<=.05", "p<=.10"
    );
    for c in &results {
        let r: Vec<f64> = c.rejection.iter().map(|r| r.rate).collect();
        println!(
            "{:<11} {:<18} {:>6} {:>8.4} {:>10.2e} {:>8.3} {:>8.3} {:>8.3}",
            c.measure.to_string(),
            c.null,
            c.n,
            c.ks.d,
            c.ks.p,
            r[0],
            r[1],
            r[2]
        );
    }
    eprintln!("{:.1} s", t.elapsed().as_secs_f64());
    if let Some(out) = args.get(2) {
        std::fs::write(out, serde_json::to_string_pretty(&results)?)?;
    }
    Ok(())
}
