/*!
Integration tests of the null crate, built into one binary with one module per topic:
reference values (numpy), real fingerprints, calibration and power, and end-to-end panel and
matrix nulls from CSV files.
*/

mod calibration;
mod panel;
mod power;
mod published;
mod real;
mod reference;
mod util;
