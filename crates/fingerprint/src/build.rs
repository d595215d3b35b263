//! Which nullprint build produced this process's outputs, for every provenance record.
//!
//! The binary knows its git commit and enabled features (its build script reads them); the
//! libraries do not. It records them once at start-up with [`set`], and every fingerprint,
//! derivation record and report then names the same build as `nullprint --version`. A library
//! used without the binary records its package version alone.

use std::sync::OnceLock;

static BUILD: OnceLock<String> = OnceLock::new();

/// Record the build identity (e.g. `0.1.0 (git 4e1c59b12345, features: download)`).
///
/// The first call wins: a build cannot change within a process. Returns whether `build` is now
/// the recorded identity.
pub fn set(build: &str) -> bool {
    BUILD.get_or_init(|| build.to_owned()) == build
}

/// The build identity recorded in provenance: what [`set`] recorded, else the package version.
pub fn version() -> &'static str {
    BUILD
        .get()
        .map(String::as_str)
        .unwrap_or(env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_set_wins() {
        assert!(super::version().starts_with(env!("CARGO_PKG_VERSION")));
        assert!(super::set("9.9.9 (git abc, features: none)"));
        assert_eq!(super::version(), "9.9.9 (git abc, features: none)");
        assert!(!super::set("other"));
        assert_eq!(super::version(), "9.9.9 (git abc, features: none)");
    }
}
