//! What an installed `nullprint` brings along: a version naming its build, which every
//! fingerprint records, and completion scripts that load in their shell.

use std::path::Path;
use std::process::{Command, Output};

fn nullprint(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_nullprint"))
        .args(args)
        .output()
        .expect("run nullprint");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// The text after `nullprint ` in `nullprint --version`.
fn build() -> String {
    let out = String::from_utf8(nullprint(&["--version"]).stdout).unwrap();
    out.trim()
        .strip_prefix("nullprint ")
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned()
}

#[test]
fn version_names_commit_and_features() {
    let b = build();
    let (version, rest) = b.split_once(" (git ").unwrap_or_else(|| panic!("{b}"));
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let (commit, features) = rest
        .strip_suffix(')')
        .and_then(|r| r.split_once(", features: "))
        .unwrap_or_else(|| panic!("{b}"));
    let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
    assert!(
        hash == "unknown" || (hash.len() == 12 && hash.bytes().all(|c| c.is_ascii_hexdigit())),
        "{b}"
    );
    assert!(features.split(", ").any(|f| f == "download"), "{b}");
}

#[test]
fn fingerprints_record_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let header = br#"{"model.layers.0.self_attn.q_proj.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    for x in [0.5f32, -0.25, 0.125, 1.0] {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    let model = dir.path().join("model.safetensors");
    std::fs::write(&model, bytes).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_nullprint"))
        .arg("fingerprint")
        .arg(&model)
        .env("NULLPRINT_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fp: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(fp["model"]["nullprint_version"], build().as_str());
}

/// Every subcommand, from `nullprint --help`'s command list.
fn subcommands() -> Vec<String> {
    let help = String::from_utf8(nullprint(&["--help"]).stdout).unwrap();
    let list = help
        .split("Commands:")
        .nth(1)
        .unwrap_or_else(|| panic!("{help}"));
    let names: Vec<String> = list
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|n| n != "help")
        .collect();
    assert!(names.len() >= 12, "{names:?}");
    names
}

#[test]
fn bash_completion_loads_and_completes_subcommands() {
    if Command::new("bash").arg("--version").output().is_err() {
        println!("SKIPPED: bash_completion_loads_and_completes_subcommands: no bash on PATH");
        return;
    }
    let script = nullprint(&["completions", "bash"]).stdout;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nullprint.bash");
    std::fs::write(&path, script).unwrap();
    // Load the script (any error fails `set -e`), then ask it to complete `nullprint <TAB>`.
    let o = Command::new("bash")
        .arg("-c")
        .arg(
            r#"set -euo pipefail
source "$1"
complete -p nullprint >/dev/null
COMP_WORDS=(nullprint "")
COMP_CWORD=1
COMP_LINE="nullprint "
COMP_POINT=${#COMP_LINE}
_nullprint nullprint "" nullprint
printf '%s\n' "${COMPREPLY[@]}""#,
        )
        .arg("bash")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && stderr.is_empty(), "{stderr}");
    let offered: Vec<String> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for sub in subcommands() {
        assert!(offered.contains(&sub), "{sub} not offered: {offered:?}");
    }
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    let subs = subcommands();
    for shell in ["zsh", "fish"] {
        let script = String::from_utf8(nullprint(&["completions", shell]).stdout).unwrap();
        for sub in &subs {
            assert!(script.contains(sub.as_str()), "{shell}: {sub}");
        }
        // When the shell is installed, the script must at least parse.
        let check = match shell {
            "zsh" => Command::new("zsh")
                .arg("-n")
                .arg("-c")
                .arg(&script)
                .output(),
            _ => Command::new("fish")
                .arg("--no-execute")
                .arg("-c")
                .arg(&script)
                .output(),
        };
        match check {
            Ok(o) => assert!(
                o.status.success(),
                "{shell}: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(_) => println!("SKIPPED: {shell} syntax check: no {shell} on PATH"),
        }
    }
}

#[test]
fn man_pages_are_written_once_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    let out_s = out.to_str().unwrap();
    nullprint(&["man", "-o", out_s]);
    for sub in subcommands() {
        let page = std::fs::read_to_string(out.join(format!("nullprint-{sub}.1"))).unwrap();
        assert!(page.contains(&format!(".TH nullprint-{sub} 1")), "{page}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_nullprint"))
        .args(["man", "-o", out_s])
        .output()
        .unwrap();
    assert!(!o.status.success(), "overwrote without --force");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    // groff, when installed, renders the main page without a warning.
    let page = Path::new(&out).join("nullprint.1");
    match Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&page)
        .output()
    {
        Ok(o) => assert!(
            o.status.success() && o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => println!("SKIPPED: groff rendering: no groff on PATH"),
    }
}
