//! ConvoKit corpus export: `utterances.jsonl`, `speakers.json`, `conversations.json`,
//! `corpus.json` and `index.json`, loadable with `convokit.Corpus(filename=OUT_DIR)`.
//!
//! Mapping: one conversation per completed dialogue (id = its first utterance's id, as
//! ConvoKit requires); one speaker per (dialogue, role), since each dialogue's agents play
//! different personas; utterances in turn order, each replying to the previous one.
//! Failed dialogues are left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::dialogue::events::Event;
use crate::rundir::transcript::{completed_attempt, read_events, TranscriptError};

/// Export failures.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The transcript could not be read.
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The directory holds no transcript.
    #[error("{} holds no transcripts.jsonl; is it a run directory?", .0.display())]
    NotARun(PathBuf),
}

/// What was exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportCounts {
    /// Conversations written (one per completed dialogue).
    pub conversations: usize,
    /// Utterances written.
    pub utterances: usize,
    /// Speakers written (one per dialogue and role).
    pub speakers: usize,
}

/// Writes the ConvoKit corpus of `run_dir` into `out_dir`.
// Long on purpose: writes ConvoKit's four files from one reading of the transcript, in the order the format expects.
pub fn export_convokit(run_dir: &Path, out_dir: &Path) -> Result<ExportCounts, ExportError> {
    let transcript = run_dir.join("transcripts.jsonl");
    if !transcript.exists() {
        return Err(ExportError::NotARun(run_dir.to_path_buf()));
    }
    let events = read_events(&transcript)?;
    let mut utterances: Vec<Value> = Vec::new();
    let mut speakers: BTreeMap<String, Value> = BTreeMap::new();
    let mut conversations: BTreeMap<String, Value> = BTreeMap::new();
    let mut scenario = String::new();

    for (dialogue, evs) in &events {
        let Some(attempt) = completed_attempt(evs) else { continue };
        let Some(Event::Begin(begin)) = attempt.first() else { continue };
        scenario = begin.scenario.clone();
        let speaker_id = |role: &str| format!("{dialogue}-{role}");
        for a in &begin.agents {
            speakers.insert(
                speaker_id(&a.role),
                json!({"meta": {
                    "role": a.role,
                    "name": a.name,
                    "persona_id": a.persona_id,
                    "model": a.model,
                    "method": a.method,
                    "dialogue": dialogue,
                }, "vectors": []}),
            );
        }
        let conversation_id = format!("{dialogue}-t000");
        let mut previous: Option<String> = None;
        let mut outcomes = Map::new();
        let mut end_reason = Value::Null;
        for e in attempt {
            match e {
                Event::Turn(t) => {
                    let id = format!("{dialogue}-t{:03}", t.turn);
                    let chosen = t.candidates.get(t.choice.index);
                    utterances.push(json!({
                        "id": id,
                        "speaker": speaker_id(&t.speaker),
                        "conversation_id": conversation_id,
                        "reply_to": previous,
                        "timestamp": t.turn,
                        "text": t.text,
                        "meta": {
                            "turn": t.turn,
                            "role": t.speaker,
                            "method": t.method,
                            "n_candidates": t.candidates.len(),
                            "chosen_index": t.choice.index,
                            "chosen_probability": chosen.map(|c| c.probability),
                        },
                        "vectors": [],
                    }));
                    previous = Some(id);
                }
                Event::Outcome(o) => {
                    outcomes.insert(o.column(), o.value.clone().unwrap_or(Value::Null));
                }
                Event::End(end) => end_reason = serde_json::to_value(end.reason).unwrap_or(Value::Null),
                _ => {}
            }
        }
        if previous.is_none() {
            continue;
        }
        conversations.insert(
            conversation_id,
            json!({"meta": {
                "dialogue": dialogue,
                "index": begin.index,
                "seed": begin.seed,
                "population_id": begin.population_id,
                "end_reason": end_reason,
                "outcomes": outcomes,
            }, "vectors": []}),
        );
    }

    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    // Only into an empty folder or a corpus vsim exported before (its corpus.json says so).
    let corpus_folder =
        crate::fsutil::FolderKind { what: "a corpus exported by vsim", manifest: "corpus.json" };
    crate::fsutil::claim_dir(out_dir, corpus_folder).map_err(io(out_dir))?;
    let mut lines = String::new();
    for u in &utterances {
        lines.push_str(&u.to_string());
        lines.push('\n');
    }
    let write = |name: &str, text: String| {
        let p = out_dir.join(name);
        crate::fsutil::write_atomic(&p, text.as_bytes()).map_err(io(&p))
    };
    write("utterances.jsonl", lines)?;
    write("speakers.json", pretty(&json!(speakers)))?;
    write("conversations.json", pretty(&json!(conversations)))?;
    let corpus_meta = json!({"name": scenario, "source": "vsim", "vsim_version": env!("CARGO_PKG_VERSION")});
    write("corpus.json", pretty(&corpus_meta))?;
    let index = json!({
        "utterances-index": type_index(utterances.iter().filter_map(|u| u.get("meta"))),
        "speakers-index": type_index(speakers.values().filter_map(|s| s.get("meta"))),
        "conversations-index": type_index(conversations.values().filter_map(|c| c.get("meta"))),
        "overall-index": type_index(std::iter::once(&corpus_meta)),
        "version": 1,
        "vectors": [],
    });
    write("index.json", pretty(&index))?;
    Ok(ExportCounts {
        conversations: conversations.len(),
        utterances: utterances.len(),
        speakers: speakers.len(),
    })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// ConvoKit's metadata index: each key's Python type names, as `str(type(value))`.
fn type_index<'a>(metas: impl Iterator<Item = &'a Value>) -> Value {
    let mut index: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for meta in metas {
        if let Some(obj) = meta.as_object() {
            for (k, v) in obj {
                let t = python_type(v).to_string();
                let types = index.entry(k.clone()).or_default();
                if !types.contains(&t) {
                    types.push(t);
                }
            }
        }
    }
    json!(index)
}

fn python_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<class 'NoneType'>",
        Value::Bool(_) => "<class 'bool'>",
        Value::Number(n) if n.is_f64() => "<class 'float'>",
        Value::Number(_) => "<class 'int'>",
        Value::String(_) => "<class 'str'>",
        Value::Array(_) => "<class 'list'>",
        Value::Object(_) => "<class 'dict'>",
    }
}
