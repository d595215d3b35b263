//! Render nullprint results as self-contained reports.
#![deny(missing_docs)]
