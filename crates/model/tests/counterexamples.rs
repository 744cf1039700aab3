//! Every counterexample the model checker wrote (tests/counterexamples/,
//! by `cargo xtask modelcheck` or the planted-bug tests) replays step by
//! step through the real replica. One found with a planted bug must still
//! end in its violation (the check keeps its teeth); one found without must
//! no longer violate anything anywhere on its path (the bug stays fixed).

use model::{Counterexample, RaftModel, replay};
use std::path::Path;

#[test]
fn every_recorded_counterexample_replays_as_recorded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/counterexamples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the counterexamples directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no counterexample in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let c = Counterexample::from_json(&text).expect("a counterexample");
        let model = RaftModel::new(c.bounds.clone());
        let visited =
            replay(&model, &c.actions).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (_, last) = visited.last().expect("the initial state at least");
        if c.bounds.planted.is_some() {
            assert!(
                last.contains(&c.property.as_str()),
                "{}: ends violating {last:?}, not {}",
                file.display(),
                c.property
            );
        } else {
            for (n, (_, violated)) in visited.iter().enumerate() {
                assert!(
                    violated.is_empty(),
                    "{}: after step {n}: still violates {violated:?}",
                    file.display()
                );
            }
        }
        println!(
            "{}: {} steps, {}",
            file.display(),
            c.actions.len(),
            c.property
        );
    }
}
