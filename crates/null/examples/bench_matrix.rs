//! Time all pairwise similarities of N simulated fingerprints (mixed depths 12–48 layers, four
//! attention roles) for every measure.
//!
//! ```text
//! cargo run --release -p nullprint-null --example bench_matrix -- [N]
//! ```

use std::time::Instant;

use null::labels::Labels;
use null::measure::Measure;
use null::rng::stream;
use null::sim::NullModel;
use null::table::PairTable;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(1000), |s| s.parse())?;
    let depths = [12, 24, 28, 32, 48];
    let curves = (0..n)
        .map(|i| {
            let model = NullModel {
                layers: depths[i % depths.len()],
                ..NullModel::default()
            };
            model.draw(&format!("m{i}"), &mut stream(1, i as u64))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let labels = Labels::singletons(curves.iter().map(|c| c.model.as_str()))?;
    for m in Measure::ALL {
        let t = Instant::now();
        let table = PairTable::from_curves(&curves, &labels, m)?;
        println!(
            "{:<11} {n} fingerprints, {} pairs: {:.3} s ({} threads)",
            m.name(),
            table.pairs.len(),
            t.elapsed().as_secs_f64(),
            rayon::current_num_threads()
        );
    }
    Ok(())
}
