//! `config.json`: the typed, versioned manifest of a run directory. It says what kind of run
//! the directory holds, the settings that make it one experiment (checked on `--resume` and
//! by `merge`), and every input as it was at run time: absolute path and sha256, so that
//! evaluation and branching read the run's own inputs and notice when they have changed.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::persuasionforgood::Split;
use crate::vs::{Method, Selection};

/// Who a population drawn from human data is: the data set, the filter, the split and the
/// participants in population order. Written to the run's `config.json` as
/// `population_reference`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PopulationReference {
    /// The data set, e.g. `persuasionforgood`.
    pub dataset: String,
    /// The split the participants are from.
    pub split: Split,
    /// The fixed seed of the train/test split ([`crate::data::persuasionforgood::SPLIT_SEED`]).
    pub split_seed: u64,
    /// Size of the test part of the split.
    pub test_size: usize,
    /// The consistency filter, in words.
    pub filter: String,
    /// What the filter kept and dropped, in words.
    pub filter_summary: String,
    /// Persona ids of the split's participants, in population order (dialogue i plays
    /// participant i mod len).
    pub participant_ids: Vec<String>,
}

/// The manifest format written by this version. Version 0 is a `config.json` written before
/// the manifest had a version; it reads with the same struct (absent fields are empty).
pub const MANIFEST_VERSION: u32 = 1;

/// What a run directory holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Dialogues of a scenario, one per population member (`vsim run`, sweep cells).
    #[default]
    Dialogue,
    /// Respondents answering a questionnaire (`vsim run SURVEY.toml`).
    Survey,
    /// Continuations of one recorded dialogue (`vsim branch`).
    Branch,
}

impl RunKind {
    /// The id of dialogue (or respondent) `index` in a run of this kind: sortable, e.g.
    /// `d00003` or `r00003`.
    pub(crate) fn unit_id(self, index: usize) -> String {
        match self {
            RunKind::Survey => format!("r{index:05}"),
            RunKind::Dialogue | RunKind::Branch => format!("d{index:05}"),
        }
    }
}

/// One slice of an experiment: the dialogues whose index `i` has `i % count == index`.
/// Shards of one experiment share its seed, so merged shards equal an unsharded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard's index, from 0.
    pub index: usize,
    /// The number of shards.
    pub count: usize,
}

impl Shard {
    /// Shard `index` of `count` (`index < count`).
    pub fn new(index: usize, count: usize) -> Result<Self, String> {
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: expected I/N with 0 <= I < N"));
        }
        Ok(Self { index, count })
    }

    /// Whether dialogue `i` belongs to this shard.
    pub fn contains(&self, i: usize) -> bool {
        self.count > 0 && i % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid shard `{s}`: expected I/N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let parse = |x: &str| x.trim().parse::<usize>().map_err(|_| bad());
        Self::new(parse(i)?, parse(n)?)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The model that played one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleModelName {
    /// The role's id.
    pub role: String,
    /// The model spec as given (e.g. `local`, `openai:gpt-4o-mini`).
    pub model: String,
}

/// An input file or directory as it was when the run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedInput {
    /// What the input is to the run: `scenario`, `questionnaire`, `personas`, `human data`.
    pub role: String,
    /// Absolute path.
    pub path: PathBuf,
    /// sha256 of the file; for a directory, of its files' names and digests in name order.
    pub sha256: String,
}

/// Why an input cannot be pinned or checked.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct PinError {
    /// The input's path.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

impl PinnedInput {
    /// Pins `path` (a file, or a directory of files) as `role`.
    pub(crate) fn pin(role: &str, path: &Path) -> Result<Self, PinError> {
        let err = |source| PinError { path: path.to_path_buf(), source };
        let absolute = std::path::absolute(path).map_err(err)?;
        let sha256 = digest_path(&absolute).map_err(err)?;
        Ok(Self { role: role.to_string(), path: absolute, sha256 })
    }

    /// How the input differs from what was pinned today, if it does.
    pub fn change(&self) -> Option<InputChange> {
        let reason = match digest_path(&self.path) {
            Ok(d) if d == self.sha256 => return None,
            Ok(_) => "its contents changed since the run".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "it no longer exists".to_string(),
            Err(e) => format!("it cannot be read ({e})"),
        };
        Some(InputChange { role: self.role.clone(), path: self.path.clone(), reason })
    }
}

/// An input that is no longer what the run read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputChange {
    /// What the input is to the run (see [`PinnedInput::role`]).
    pub role: String,
    /// Absolute path.
    pub path: PathBuf,
    /// How it changed, in words.
    pub reason: String,
}

impl std::fmt::Display for InputChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} {}: {}", self.role, self.path.display(), self.reason)
    }
}

fn digest_path(path: &Path) -> std::io::Result<String> {
    if std::fs::metadata(path)?.is_file() {
        return digest_file(path);
    }
    let mut files = Vec::new();
    collect_files(path, "", &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for (name, p) in files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(digest_file(&p)?.as_bytes());
        hasher.update([b'\n']);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Every file below `dir` (following symbolic links, as readers of the data do), named by
/// its path relative to the pinned directory; hidden entries are skipped.
fn collect_files(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let relative = format!("{prefix}{name}");
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => collect_files(&path, &format!("{relative}/"), out)?,
            Ok(m) if m.is_file() => out.push((relative, path)),
            _ => {}
        }
    }
    Ok(())
}

fn digest_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// What a survey run asked, as resolved at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurveyManifest {
    /// The survey's name.
    pub name: String,
    /// The survey file as given.
    pub source: PathBuf,
    /// The attribute that defines subgroups, e.g. `POLIDEOLOGY`.
    pub attribute: String,
    /// The subgroups simulated, in order.
    pub groups: Vec<String>,
    /// Item keys, in order.
    pub items: Vec<String>,
    /// The method respondents answer with.
    pub method: Method,
    /// How one answer is chosen.
    pub selection: Selection,
}

impl SurveyManifest {
    /// What makes two surveys the same one: everything but how the paths were spelled (the
    /// files themselves are compared by digest).
    fn identity(&self) -> (&str, &str, &[String], &[String], Method, Selection) {
        (&self.name, &self.attribute, &self.groups, &self.items, self.method, self.selection)
    }
}

/// A resolved scenario without its `source` path, which is spelled as typed.
fn without_source(scenario: &Option<serde_json::Value>) -> Option<serde_json::Value> {
    let mut s = scenario.clone()?;
    if let Some(o) = s.as_object_mut() {
        o.remove("source");
    }
    Some(s)
}

/// Where a branch run came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchOrigin {
    /// The original run directory, absolute.
    pub from: PathBuf,
    /// The branched dialogue's id.
    pub dialogue: String,
    /// The turn whose text was replaced, from 0.
    pub turn: usize,
    /// The candidate taken instead, from 0.
    pub candidate: usize,
    /// That candidate's text.
    pub text: Option<String>,
    /// The branched dialogue's seed.
    pub dialogue_seed: u64,
    /// The original run's experiment seed.
    pub experiment_seed: u64,
}

/// A run directory's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format ([`MANIFEST_VERSION`] when written by this version; 0 before
    /// versions).
    #[serde(default)]
    pub manifest_version: u32,
    /// Version of vsim that wrote the run.
    #[serde(default)]
    pub vsim_version: String,
    /// What the directory holds.
    #[serde(default)]
    pub kind: RunKind,
    /// Dialogues (respondents, branches) in the whole experiment, all shards together.
    #[serde(default)]
    pub n: usize,
    /// The experiment seed (for a branch: the branched dialogue's seed).
    #[serde(default)]
    pub seed: u64,
    /// How many times each person is simulated; `n` counts every replicate.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub replicates: usize,
    /// The shard this directory holds, when it holds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The model of each role, in role order.
    #[serde(default)]
    pub models: Vec<RoleModelName>,
    /// Every input as it was at run time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<PinnedInput>,
    /// The resolved scenario (`Scenario::resolved`), for dialogue and branch runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<serde_json::Value>,
    /// The population spec as given (`pfg:DIR`, a persona directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<String>,
    /// Who the population's members are in the human data, for a population drawn from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population_reference: Option<PopulationReference>,
    /// What a survey run asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<SurveyManifest>,
    /// Where a branch run came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchOrigin>,
    /// The shard directories a merged run was made from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<PathBuf>,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// Brings a `config.json` written before the manifest had a version into its shape: a
/// survey's fields were at the top level with `survey` naming it, and a branch had no
/// `kind`. (Read only; the file on disk is rewritten only when the run is resumed.)
pub(crate) fn upgrade_unversioned(value: &mut serde_json::Value) {
    let Some(o) = value.as_object_mut() else { return };
    if let Some(serde_json::Value::String(name)) = o.get("survey").cloned() {
        let mut take = |k: &str| o.remove(k).unwrap_or_default();
        let survey = serde_json::json!({
            "name": name,
            "source": take("source"),
            "attribute": take("attribute"),
            "groups": take("groups"),
            "items": take("items"),
            "method": take("method"),
            "selection": take("selection"),
        });
        if let Some(model) = o.remove("model") {
            o.insert("models".into(), serde_json::json!([{"role": "respondent", "model": model}]));
        }
        o.insert("survey".into(), survey);
        o.insert("kind".into(), "survey".into());
    }
    if let Some(branch) = o.get_mut("branch").and_then(|b| b.as_object_mut()) {
        if !branch.get("experiment_seed").is_some_and(|v| v.is_u64()) {
            branch.insert("experiment_seed".into(), 0.into());
        }
        o.entry("kind").or_insert_with(|| "branch".into());
    }
}

/// One declared outcome as recorded in the resolved scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecordedOutcome {
    /// The outcome's name.
    pub name: String,
    /// The id of the role asked.
    pub role: String,
    /// The outcome's type, when recorded (as [`crate::outcome::recorded_kind`] writes it).
    #[serde(default, deserialize_with = "recorded_kind")]
    pub kind: Option<crate::vs::AnswerShape>,
    /// Whether the stated measure was also recorded.
    #[serde(default)]
    pub stated: bool,
}

/// An outcome's recorded type, `null` or absent for none.
fn recorded_kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<crate::vs::AnswerShape>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => crate::outcome::read_recorded_kind(&v).map(Some).map_err(serde::de::Error::custom),
    }
}

#[derive(Deserialize)]
struct RecordedScenario {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    source: Option<PathBuf>,
    #[serde(default)]
    outcomes: Vec<RecordedOutcome>,
}

impl Manifest {
    /// A manifest of this version for `kind`, with everything else empty.
    pub fn new(kind: RunKind, n: usize, seed: u64) -> Self {
        Self {
            manifest_version: MANIFEST_VERSION,
            vsim_version: env!("CARGO_PKG_VERSION").to_string(),
            kind,
            n,
            seed,
            replicates: 1,
            shard: None,
            models: Vec::new(),
            inputs: Vec::new(),
            scenario: None,
            population: None,
            population_reference: None,
            survey: None,
            branch: None,
            merged_from: Vec::new(),
        }
    }

    /// The first setting that makes `self` another experiment than `other` (the fields a
    /// resume or merge must agree on), by name. Input digests are compared too: resuming
    /// after an input changed would mix two experiments in one directory.
    pub(crate) fn experiment_difference(
        &self,
        other: &Manifest,
        include_shard: bool,
    ) -> Option<&'static str> {
        fn inputs(m: &Manifest) -> Vec<(&str, &str)> {
            m.inputs.iter().map(|i| (i.role.as_str(), i.sha256.as_str())).collect()
        }
        [
            ("kind", self.kind == other.kind),
            ("n", self.n == other.n),
            ("seed", self.seed == other.seed),
            ("replicates", self.replicates == other.replicates),
            ("models", self.models == other.models),
            ("scenario", without_source(&self.scenario) == without_source(&other.scenario)),
            ("population", self.same_population(other)),
            ("population_reference", self.population_reference == other.population_reference),
            (
                "survey",
                self.survey.as_ref().map(SurveyManifest::identity)
                    == other.survey.as_ref().map(SurveyManifest::identity),
            ),
            ("branch", self.branch == other.branch),
            ("inputs", other.inputs.is_empty() || self.inputs.is_empty() || inputs(self) == inputs(other)),
            ("shard", !include_shard || self.shard == other.shard),
        ]
        .into_iter()
        .find(|(_, same)| !same)
        .map(|(field, _)| field)
    }

    /// Whether two manifests drew their population from the same place: the same kind of
    /// spec, and, where both pinned it, the same contents (however the path was spelled).
    fn same_population(&self, other: &Manifest) -> bool {
        let kind = |m: &Manifest| {
            m.population.as_deref().map(|p| p.split_once(':').map_or("", |(k, _)| k).to_string())
        };
        if self.inputs.is_empty() || other.inputs.is_empty() {
            self.population == other.population
        } else {
            kind(self) == kind(other)
        }
    }

    /// The id of the run's dialogue (or respondent) `index`, as its transcript names it.
    pub(crate) fn unit_id(&self, index: usize) -> String {
        self.kind.unit_id(index)
    }

    /// The pinned input playing `role`, if any.
    pub fn input(&self, role: &str) -> Option<&PinnedInput> {
        self.inputs.iter().find(|i| i.role == role)
    }

    /// Inputs that are no longer what the run read.
    pub fn changed_inputs(&self) -> Vec<InputChange> {
        self.inputs.iter().filter_map(PinnedInput::change).collect()
    }

    fn recorded_scenario(&self) -> Option<RecordedScenario> {
        serde_json::from_value(self.scenario.clone()?).ok()
    }

    /// The scenario's name.
    pub(crate) fn scenario_name(&self) -> Option<String> {
        self.recorded_scenario().and_then(|s| s.name).or_else(|| self.survey.as_ref().map(|s| s.name.clone()))
    }

    /// The scenario file as given at run time.
    pub(crate) fn scenario_source(&self) -> Option<PathBuf> {
        self.recorded_scenario()?.source
    }

    /// The outcomes the scenario declared, in its order.
    pub(crate) fn declared_outcomes(&self) -> Vec<RecordedOutcome> {
        self.recorded_scenario().map(|s| s.outcomes).unwrap_or_default()
    }

    /// The `outcomes.csv` columns: `role.name` per outcome, then `role.name.stated` for
    /// outcomes also stated in the dialogue.
    pub(crate) fn outcome_columns(&self) -> Vec<String> {
        let mut columns = Vec::new();
        for o in self.declared_outcomes() {
            let key = format!("{}.{}", o.role, o.name);
            columns.push(key.clone());
            if o.stated {
                columns.push(format!("{key}.stated"));
            }
        }
        columns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_inputs_notice_edits_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, "a").unwrap();
        let pin = PinnedInput::pin("scenario", &file).unwrap();
        assert!(pin.path.is_absolute());
        assert_eq!(pin.change(), None);
        std::fs::write(&file, "b").unwrap();
        assert!(pin.change().unwrap().reason.contains("changed"));
        std::fs::remove_file(&file).unwrap();
        assert!(pin.change().unwrap().reason.contains("no longer exists"));

        std::fs::write(dir.path().join("x.json"), "1").unwrap();
        let d = PinnedInput::pin("human data", dir.path()).unwrap();
        assert_eq!(d.change(), None);
        std::fs::write(dir.path().join("y.json"), "2").unwrap();
        assert!(d.change().is_some());
    }

    #[test]
    fn a_config_without_version_still_reads() {
        let old = r#"{"vsim_version":"0.1.0","scenario":{"name":"s","outcomes":[{"name":"donation","role":"persuadee","stated":true}]},"population":"personas","n":3,"seed":7,"models":[{"role":"a","model":"mock"}]}"#;
        let m: Manifest = serde_json::from_str(old).unwrap();
        assert_eq!(m.manifest_version, 0);
        assert_eq!(m.kind, RunKind::Dialogue);
        assert_eq!(m.outcome_columns(), vec!["persuadee.donation", "persuadee.donation.stated"]);
        assert_eq!(m.scenario_name().as_deref(), Some("s"));
    }

    #[test]
    fn survey_and_branch_configs_without_version_still_read() {
        let survey = r#"{"vsim_version":"0.1.0","kind":"survey","survey":"w26","source":"scenarios/survey_opinionqa_w26.toml","attribute":"POLIDEOLOGY","groups":["Liberal","Conservative"],"items":["GUN_W26"],"method":"vs-standard","selection":"weighted","model":"local","n":10,"seed":0}"#;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), survey).unwrap();
        let m = crate::rundir::read_manifest(dir.path()).unwrap();
        assert_eq!(m.kind, RunKind::Survey);
        let s = m.survey.unwrap();
        assert_eq!((s.name.as_str(), s.groups.len(), s.items.len()), ("w26", 2, 1));
        assert_eq!(m.models, vec![RoleModelName { role: "respondent".into(), model: "local".into() }]);

        let branch = r#"{"vsim_version":"0.1.0","scenario":{"name":"s","outcomes":[]},"population":"personas","n":2,"seed":77,"models":[{"role":"a","model":"mock"}],"branch":{"from":"runs/x","dialogue":"d00001","turn":2,"candidate":1,"text":"hi","dialogue_seed":77,"experiment_seed":5}}"#;
        std::fs::write(dir.path().join("config.json"), branch).unwrap();
        let m = crate::rundir::read_manifest(dir.path()).unwrap();
        assert_eq!(m.kind, RunKind::Branch);
        assert_eq!(m.branch.unwrap().experiment_seed, 5);
    }

    #[test]
    fn paths_spelled_otherwise_are_the_same_experiment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.toml"), "x").unwrap();
        let mut a = Manifest::new(RunKind::Dialogue, 2, 1);
        a.scenario = Some(serde_json::json!({"name": "s", "source": "s.toml"}));
        a.population = Some("pfg:data/pfg".into());
        a.inputs.push(PinnedInput::pin("scenario", &dir.path().join("s.toml")).unwrap());
        let mut b = a.clone();
        b.scenario = Some(serde_json::json!({"name": "s", "source": "./../here/s.toml"}));
        b.population = Some("pfg:/abs/data/pfg".into());
        assert_eq!(a.experiment_difference(&b, true), None);
        b.inputs[0].sha256 = "0".repeat(64);
        assert_eq!(a.experiment_difference(&b, true), Some("inputs"));
    }

    #[test]
    fn a_pinned_directory_covers_linked_files_and_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("corpus")).unwrap();
        std::fs::write(data.join("corpus/utterances.jsonl"), "1").unwrap();
        std::fs::write(dir.path().join("outside.csv"), "a").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("outside.csv"), data.join("linked.csv")).unwrap();
        let pin = PinnedInput::pin("human data", &data).unwrap();
        std::fs::write(data.join("corpus/utterances.jsonl"), "2").unwrap();
        assert!(pin.change().is_some(), "a file in a subdirectory counts");
        let pin = PinnedInput::pin("human data", &data).unwrap();
        #[cfg(unix)]
        {
            std::fs::write(dir.path().join("outside.csv"), "b").unwrap();
            assert!(pin.change().is_some(), "a linked file counts");
        }
    }

    #[test]
    fn resume_differences_are_named() {
        let a = Manifest::new(RunKind::Dialogue, 4, 1);
        let mut b = a.clone();
        assert_eq!(a.experiment_difference(&b, true), None);
        b.seed = 2;
        assert_eq!(a.experiment_difference(&b, true), Some("seed"));
        let mut c = a.clone();
        c.shard = Some(Shard::new(0, 2).unwrap());
        assert_eq!(a.experiment_difference(&c, false), None);
        assert_eq!(a.experiment_difference(&c, true), Some("shard"));
    }
}
