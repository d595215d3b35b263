//! Bounded mutation fuzzing of every parser (see `tests/fuzzing/mod.rs`): no panic, no hang,
//! no allocation over the cap. `NULLPRINT_FUZZ_ITERS` sets the inputs per parser (default
//! 20,000); `just fuzz` runs the same loop for a million per parser.

mod fuzzing;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: fuzzing::Counting = fuzzing::Counting;

#[test]
fn generated_seeds_are_valid_inputs() {
    let bad: Vec<String> = fuzzing::targets()
        .iter()
        .flat_map(fuzzing::seed_dir_check)
        .collect();
    assert!(bad.is_empty(), "seeds refused:\n{}", bad.join("\n"));
}

#[test]
fn mutated_inputs_never_panic_hang_or_overallocate() {
    let count: u64 = std::env::var("NULLPRINT_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let base: u64 = std::env::var("NULLPRINT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6e75_6c6c);
    let limits = fuzzing::Limits {
        hang: Duration::from_secs(30),
        ..Default::default()
    };
    let mut results = BTreeMap::new();
    for t in fuzzing::targets() {
        let start = Instant::now();
        let c = fuzzing::fuzz_target(&t, count, base, &limits);
        results.insert(t.name, (c, start.elapsed()));
    }
    fuzzing::report(&results);
    let failures: Vec<&String> = results.values().flat_map(|(c, _)| &c.failures).collect();
    assert!(
        failures.is_empty(),
        "{} failing inputs:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (name, (c, _)) in &results {
        assert_eq!(c.inputs, count, "{name}");
        // The seeds are valid and many mutations are benign: a target that refuses everything
        // would be a harness bug, not a robust parser.
        assert!(c.accepted > 0, "{name}: no input accepted");
        assert!(c.refused > 0, "{name}: no input refused");
    }
}

/// A remote file's header is accepted exactly when the same bytes on disk are.
#[test]
fn held_headers_are_judged_as_mapped_files() {
    let bad = fuzzing::head_disagreements(1_500, 0x7265_6d6f);
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad[..bad.len().min(5)].join("\n")
    );
}
