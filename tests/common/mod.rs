//! What several integration tests share: the repository root and a small persuasion-like
//! scenario over the shipped personas.

#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A short persuasion-like scenario: a direct persuader, a VS persuadee (k = 3), a numeric
/// outcome.
pub fn tiny_toml(max_turns: usize) -> String {
    format!(
        r#"
name = "tiny"
population = "{personas}"
[[roles]]
id = "persuader"
name = "Persuader"
method = "direct"
system = "You ask for a donation."
[[roles]]
id = "persuadee"
name = "Persuadee"
method = "vs-standard"
k = 3
persona = "population"
system = "You are {{{{ persona.name }}}}."
[turns]
policy = "fixed"
first = "persuader"
edges = [["persuader", "persuadee"], ["persuadee", "persuader"]]
max_turns = {max_turns}
[[outcomes]]
name = "donation"
role = "persuadee"
type = "number"
min = 0
max = 2
question = "How much do you donate?"
"#,
        personas = root().join("personas").display()
    )
}
