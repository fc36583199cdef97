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

/// A port that refuses connections for as long as the returned socket lives: bound, so no
/// test running beside this one can take it, but never listening. (A listener bound and
/// dropped frees its port for the next test's server, which then answers.)
pub fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).expect("a free port");
    let port = socket.local_addr().expect("its address").port();
    (socket, port)
}
