//! Every measure against an independent numpy/scipy computation of the same definitions
//! (`scripts/null_reference.py` wrote `tests/data/reference_synthetic.json`).

use null::measure::{similarity, Measure, MeasureOptions};
use null::Error;

use crate::util::{assert_close, curves_from_json, data};

#[test]
fn synthetic_cases_match_numpy() {
    let d = data("reference_synthetic.json");
    let cases = d["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    let mut checked = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let a = curves_from_json("a", &case["a"]);
        let b = curves_from_json("b", &case["b"]);
        let aligned = a.max_layers().max(b.max_layers());
        for m in Measure::ALL {
            let exp = &case["expected"][m.name()];
            let got = similarity(&a, &b, &MeasureOptions::new(m));
            if aligned < m.min_aligned() {
                // numpy computes a number here, but it is a correlation of fewer than three
                // free points; the crate refuses.
                assert!(
                    matches!(got, Err(Error::TooFewLayers { .. })),
                    "{name} {m}: {got:?}"
                );
                continue;
            }
            let s = got.unwrap_or_else(|e| panic!("{name} {m}: {e}"));
            for (role, r) in s.per_role.iter() {
                let want = exp["per_role"][role].as_f64().unwrap();
                assert_close(*r, want, 1e-12, &format!("{name} {m} {role}"));
            }
            assert_close(
                s.score,
                exp["score"].as_f64().unwrap(),
                1e-12,
                &format!("{name} {m}"),
            );
            assert_close(
                s.rescaled,
                exp["rescaled"].as_f64().unwrap(),
                1e-12,
                &format!("{name} {m} rescaled"),
            );
            checked += 1;
        }
    }
    // 2 hand cases (3 and 5 aligned points) + 4 random cases x 5 measures, minus the refused.
    assert!(checked >= 22, "{checked}");
}
