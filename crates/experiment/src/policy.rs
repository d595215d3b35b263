//! Every statistical rule of an experiment, named, with its reason. To change how a null is
//! judged, how many draws a step takes, or which simulated controls are built, change it here.

/// Level of the power study and of the verdict's "can the panel reject?" check when the
/// experiment file gives none: the level lineage claims are usually read at.
pub const DEFAULT_ALPHA: f64 = 0.01;

/// Most Monte-Carlo draws an experiment may ask for per null. Every draw is kept (figures,
/// report): 10⁶ took 848 MB of memory and wrote a 431 MB report (issue #24), about 850 bytes
/// of memory and 430 of report per draw, so 10⁵ bounds a run near 85 MB and its report near
/// 45 MB, while its Monte-Carlo error at p = 0.01 is already 3·10⁻⁴.
pub const MAX_SAMPLES: usize = 100_000;

/// Most simulated derived models per derivation (`[controls] replicates`): each is a full
/// fingerprint curve set scored against every panel model; 10⁴ is a hundred times what the
/// power curves use and keeps a run within minutes and tens of megabytes.
pub const MAX_CONTROL_REPLICATES: usize = 10_000;

/// The level at which a surrogate null's size on real unrelated pairs is judged in the verdict
/// (the smallest level `null::calibrate` reports).
pub const SIZE_LEVEL: f64 = 0.01;

/// A null whose rejection rate of real unrelated pairs at [`SIZE_LEVEL`] exceeds this is called
/// liberal and every p-value it gives carries a caution: five times the level, far outside the
/// binomial spread of a calibrated null on a panel of a few dozen pairs.
pub const LIBERAL_RATE: f64 = 0.05;

/// `nullprint calibrate` judges each null at this level.
pub const CALIBRATION_LEVEL: f64 = 0.05;

/// ... and calls it calibrated when its rejection rate is at most this multiple of the level
/// (room for Monte-Carlo spread at the default replicate count).
pub const CALIBRATED_WITHIN: f64 = 1.5;

/// Target false-positive rate of the leave-one-model-out threshold.
pub const HELD_OUT_FPR: f64 = 0.05;

/// Most surrogate draws per unrelated pair when measuring a surrogate null's size on the panel
/// (the size is a rate over pairs; each pair's p needs only two decimals).
pub const SIZE_SAMPLES: usize = 1000;

/// Surrogate draws per simulated derived model in the power study (power is a rate over
/// replicates; each p only needs to resolve α).
pub const POWER_SURROGATE_SAMPLES: usize = 250;

/// Surrogate draws for each positive control built from real weights (resolves p to ~5e-4).
pub const CONTROL_SURROGATE_SAMPLES: usize = 2000;

/// A figure shows at most this many evenly spaced quantiles of a null's draws: a histogram of
/// 250 quantiles has the shape of 10,000 draws (its bins hold 10 or more of them) at a fortieth
/// of the report's size (the p-values use every draw, which the seed reproduces).
pub const FIGURE_QUANTILES: usize = 250;

/// Steps per unit of the threshold grid of every rate-against-threshold curve (the panel's,
/// and the published matched stratum's in the committed summary): 20 gives −1 to 1 by 0.05,
/// fine enough to read a rate at 0.7 or 0.9 and 41 points per curve.
pub const RATE_GRID_STEPS: i32 = 20;

/// The thresholds of every rate-against-threshold curve: −1 to 1 by 1/[`RATE_GRID_STEPS`].
pub fn rate_grid() -> Vec<f64> {
    (-RATE_GRID_STEPS..=RATE_GRID_STEPS)
        .map(|i| f64::from(i) / f64::from(RATE_GRID_STEPS))
        .collect()
}

/// Most points per series of a QQ figure (a curve on a 700-pixel plot needs no more).
pub const FIGURE_QQ_POINTS: usize = 200;

/// Models per simulated panel in the report's calibration figure (about the real panel's size).
pub const CALIBRATION_PANEL_MODELS: usize = 12;

/// Simulated panels in the report's calibration figure (`just calibrate` runs the full size).
pub const CALIBRATION_REPLICATES: usize = 500;

/// Simulated derivations of a real fingerprint: relative depth drift of a long fine-tune.
pub const SIM_DRIFT_REL: f64 = 0.05;

/// ... experts of a simulated dense → MoE upcycle (Mixtral's count).
pub const SIM_UPCYCLE_EXPERTS: usize = 8;

/// ... relative noise added by every structural simulated derivation.
pub const SIM_STRUCTURAL_REL: f64 = 0.01;

/// ... one layer in this many is inserted or pruned (SOLAR-style depth changes are about a
/// quarter of the depth).
pub const SIM_LAYERS_PER_EDIT: usize = 4;

/// Seeds derived from the experiment's master seed, by purpose (stable across versions, so a
/// report lists the same seeds release after release).
pub mod seed_stream {
    /// Surrogate nulls of the comparable pair (one sub-stream per null).
    pub const SURROGATE: u64 = 1;
    /// The power study.
    pub const POWER: u64 = 2;
    /// One example per simulated positive control.
    pub const CONTROLS: u64 = 3;
    /// The calibration figure's simulation.
    pub const CALIBRATION: u64 = 4;
    /// Each surrogate null's size on the real panel (one sub-stream per null).
    pub const SIZE: u64 = 5;
    /// Surrogate nulls of the positive controls built from real weights (one per control).
    pub const REAL_CONTROLS: u64 = 6;
    /// Tie-breaking draws of the held-out check of calibrated surrogate p-values (one
    /// sub-stream per null).
    pub const CALIBRATED: u64 = 7;
    /// The bootstrap of the depth model refitted with the seed lab's strata.
    pub const DEPTH_WITH_LAB: u64 = 8;
    /// The trend-dct surrogate null of each seed-lab snapshot against its base (one
    /// sub-stream per snapshot), calibrated on the panel's reference.
    pub const LAB_SURROGATE: u64 = 9;
}

/// Is a null liberal on real data, given its rejection rate of real unrelated pairs at
/// [`SIZE_LEVEL`]?
pub fn is_liberal(rate_at_size_level: f64) -> bool {
    rate_at_size_level > LIBERAL_RATE
}

/// Is a null calibrated at `level`, given its rejection rate of true nulls there?
pub fn is_calibrated(rate: f64, level: f64) -> bool {
    rate <= CALIBRATED_WITHIN * level
}

/// The smallest p a panel null of `n` pairs can give: 1/(n + 1).
pub fn min_attainable_p(n: u64) -> f64 {
    1.0 / (n as f64 + 1.0)
}

/// Can a panel of `n` null pairs reject at `alpha` at all?
pub fn panel_can_reject(n: u64, alpha: f64) -> bool {
    min_attainable_p(n) <= alpha
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liberal_means_more_than_five_times_the_level() {
        assert!(!is_liberal(0.01));
        assert!(!is_liberal(LIBERAL_RATE));
        assert!(is_liberal(0.12));
    }

    #[test]
    fn calibrated_within_one_and_a_half_level() {
        assert!(is_calibrated(0.05, 0.05));
        assert!(is_calibrated(0.075, 0.05));
        assert!(!is_calibrated(0.0751, 0.05));
    }

    #[test]
    fn a_small_panel_cannot_reject() {
        assert!((min_attainable_p(42) - 1.0 / 43.0).abs() < 1e-15);
        assert!(!panel_can_reject(42, 0.01));
        assert!(panel_can_reject(99, 0.01));
        assert!(panel_can_reject(42, 0.05));
    }
}
