//! Long-run mutation fuzzing of every parser (`just fuzz`): the loop of `tests/fuzz.rs`, for
//! `NULLPRINT_FUZZ_ITERS` inputs per parser (default 1,000,000), optionally only the parsers
//! named as arguments. Prints per-parser counts of inputs, panics, hangs and cap violations,
//! and exits non-zero on any failure (a hang aborts the process with exit code 3).

#[path = "../tests/fuzzing/mod.rs"]
mod fuzzing;

use std::collections::BTreeMap;
use std::time::Instant;

#[global_allocator]
static ALLOC: fuzzing::Counting = fuzzing::Counting;

fn main() {
    let count: u64 = std::env::var("NULLPRINT_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base: u64 = std::env::var("NULLPRINT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6e75_6c6c);
    let only: Vec<String> = std::env::args().skip(1).collect();
    let limits = fuzzing::Limits::default();
    let mut results = BTreeMap::new();
    let mut failed = false;
    for t in fuzzing::targets() {
        if !only.is_empty() && !only.iter().any(|o| o == t.name) {
            continue;
        }
        let start = Instant::now();
        let c = fuzzing::fuzz_target(&t, count, base, &limits);
        failed |= !c.failures.is_empty();
        let mut one = BTreeMap::new();
        one.insert(t.name, (c.clone(), start.elapsed()));
        fuzzing::report(&one);
        results.insert(t.name, (c, start.elapsed()));
    }
    eprintln!("--- summary (base seed {base:#x}, {count} inputs per parser) ---");
    fuzzing::report(&results);
    if failed {
        std::process::exit(1);
    }
}
