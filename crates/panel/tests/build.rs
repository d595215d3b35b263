//! `panel build` end to end against the loopback hub serving the real local models under hub
//! ids: a wrong-depth entry fails naming itself while the others build, a second run skips
//! what is done and verified (no request for their bytes), two shards give the same directory
//! as one run, and the directory's `index.toml` loads as a baselines index.

use std::path::Path;
use std::sync::Mutex;

use fingerprint::remote::{Client, HttpConfig, Url};
use panel::{build, BuildOptions, Event, Manifest};
use testkit::hub::Server;

const COMMIT: &str = "89abcdef0123456789abcdef0123456789abcdef";

fn manifest(text: &str) -> Manifest {
    Manifest::parse(Path::new("test.toml"), text).unwrap()
}

fn run(m: &Manifest, hub: &Server, dir: &Path, shard: Option<(usize, usize)>) -> panel::Summary {
    let endpoint = Url::parse(&format!("{}/", hub.url())).unwrap();
    let make = || Ok(Client::new(HttpConfig::default(), endpoint.clone(), None));
    let log = Mutex::new(Vec::new());
    let events = |e: Event<'_>| log.lock().unwrap().push(format!("{e:?}"));
    let opts = BuildOptions {
        shard,
        sample: None,
        manifest_name: "test.toml".into(),
        client: &make,
        events: &events,
    };
    build(m, dir, &opts).unwrap()
}

#[test]
fn builds_resumes_and_shards_a_panel_from_the_hub() {
    let Some(minilm) = testkit::real_model(
        "builds_resumes_and_shards_a_panel_from_the_hub",
        "all-minilm-l6-v2",
        "model.safetensors",
    ) else {
        return;
    };
    let Some(smol) = testkit::real_model(
        "builds_resumes_and_shards_a_panel_from_the_hub",
        "smollm2-135m-instruct",
        "model.gguf",
    ) else {
        return;
    };
    let hub = Server::start();
    hub.repo(
        "sentence-transformers/all-MiniLM-L6-v2",
        COMMIT,
        &[
            ("config.json", minilm.with_file_name("config.json")),
            ("model.safetensors", minilm.clone()),
        ],
    );
    hub.repo(
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        COMMIT,
        &[("model.gguf", smol.clone())],
    );
    hub.repo(
        "someone/SmolLM2-135M-misdeclared",
        COMMIT,
        &[("model.gguf", smol.clone())],
    );
    let entry = |id: &str, repo: &str, layers: u32, root: &str, parent: Option<&str>| {
        let rel = match parent {
            None => "relation = \"base\"".to_owned(),
            Some(p) => format!("relation = \"quantized\"\nderived_from = \"{p}\""),
        };
        format!("[[model]]\nid = \"{id}\"\nrepo = \"{repo}\"\nlayers = {layers}\nroot = \"{root}\"\n{rel}\nfamily = \"f\"\norganization = \"o\"\ncard = \"https://huggingface.co/{repo}\"\n\n")
    };
    let text = format!(
        "[panel]\nname = \"loopback\"\ndescription = \"real local models under hub ids\"\n\n{}{}{}",
        entry(
            "minilm",
            "sentence-transformers/all-MiniLM-L6-v2",
            6,
            "sentence-transformers/all-MiniLM-L6-v2",
            None
        ),
        entry(
            "smol",
            "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
            30,
            "HuggingFaceTB/SmolLM2-135M",
            Some("HuggingFaceTB/SmolLM2-135M-Instruct")
        ),
        entry(
            "wrong-depth",
            "someone/SmolLM2-135M-misdeclared",
            31,
            "HuggingFaceTB/SmolLM2-135M",
            Some("HuggingFaceTB/SmolLM2-135M-Instruct")
        ),
    );
    let m = manifest(&text);
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");

    let s = run(&m, &hub, &one, None);
    assert_eq!((s.models, s.built.len(), s.skipped.len()), (3, 2, 0));
    assert_eq!(s.failed.len(), 1);
    let err = s.failed[0].to_string();
    assert!(
        err.contains("wrong-depth") && err.contains("31") && err.contains("30"),
        "{err}"
    );
    assert!(!one.join("wrong-depth.json").exists());
    assert!(s.bytes_read > 0 && s.bytes_read < s.bytes_total, "{s:?}");
    assert_eq!(s.indexed, 2);
    let index = experiment::index::PanelIndex::load(&one.join("index.toml")).unwrap();
    let ids: Vec<&str> = index.model.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["minilm", "smol"]);
    assert_eq!(index.model[1].root, "HuggingFaceTB/SmolLM2-135M");
    index.labels().unwrap();

    // Resumed: nothing re-read for the two done; the wrong entry fails again.
    let before = hub.requests().len();
    let s2 = run(&m, &hub, &one, None);
    assert_eq!(
        (s2.built.len(), s2.skipped.len(), s2.failed.len()),
        (0, 2, 1)
    );
    assert_eq!(s2.bytes_read, s.bytes_read);
    let again: Vec<_> = hub.requests()[before..]
        .iter()
        .filter(|r| !r.path.contains("misdeclared"))
        .map(|r| r.path.clone())
        .collect();
    assert!(again.is_empty(), "{again:?}");

    // A corrupted fingerprint is not "done": it is rebuilt.
    std::fs::write(one.join("minilm.json"), "{").unwrap();
    let s3 = run(&m, &hub, &one, None);
    assert_eq!(s3.built, ["minilm"]);

    // Two shards into another directory: the same files, byte for byte.
    let two = tmp.path().join("two");
    let a = run(&m, &hub, &two, Some((0, 2)));
    let b = run(&m, &hub, &two, Some((1, 2)));
    assert_eq!((a.models, b.models), (2, 1));
    for f in ["minilm.json", "smol.json", "index.toml"] {
        assert_eq!(
            std::fs::read(one.join(f)).unwrap(),
            std::fs::read(two.join(f)).unwrap(),
            "{f}"
        );
    }
}
