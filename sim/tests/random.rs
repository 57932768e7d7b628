//! Random scenarios on every `cargo test`: a small fixed set of generated scenario files
//! (`mqsim_sim::random`), one seed each, must pass every invariant. The long sweep is
//! `mqsim sim --random A..B`, which keeps each failure as a file.

use mqsim_sim::random::scenario_text;
use mqsim_sim::run::{run, RunOptions};
use mqsim_sim::scenario::Scenario;

/// Indices of the fixed set: kept few and short so the test takes seconds.
const FIXED: [u64; 3] = [0, 1, 2];

#[test]
fn a_fixed_set_of_random_scenarios_passes() {
    for index in FIXED {
        let name = format!("random-{index}");
        let text = scenario_text(index, &name);
        let scenario = Scenario::parse(&text, &format!("{name}.toml")).expect("valid");
        let out = run(&scenario, &RunOptions::default()).expect("runs");
        assert!(
            !out.failed(),
            "{name} seed {} failed:\n{}\n{text}",
            scenario.seed,
            out.report.render()
        );
    }
}
