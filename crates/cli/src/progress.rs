//! Progress bars on stderr, only when stderr is a terminal and the job is large.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Elements above which a progress bar is worth showing (~1 GB of f32/bf16 weights).
const MIN_ELEMENTS: u64 = 500_000_000;

/// A bar over `total` elements, hidden when stderr is not a terminal or the job is small.
pub fn elements_bar(total: u64, label: &str) -> ProgressBar {
    if total < MIN_ELEMENTS || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {percent:>3}% {human_pos}/{human_len} weights, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(label.to_owned());
    bar
}
