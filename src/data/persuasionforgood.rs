//! PersuasionForGood (Wang et al., 2019): 1,017 dialogues in which a persuader asks a
//! persuadee to donate part of a $2 task payment to Save the Children.
//!
//! - `full_info.csv`: one row per participant (dialogue id `B2`, participant id `B3`, role
//!   `B4`, donation `B6`, turns `B7`, Big Five, moral foundations, Schwartz values, decision
//!   style, demographics) -> [`read_full_info`], [`PfgParticipant`];
//! - `full_dialog.csv`: one row per utterance -> [`read_full_dialog`], [`PfgUtterance`].
//!
//! Missing cells (empty, `NA`, `nan`) become `None` and are never rendered into personas.
//! Files are located by header name, so column order does not matter; the importer
//! accepts the files from any directory.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};

pub use super::DataError;
use crate::persona::{is_missing_value, Persona};

/// The filter applied to PersuasionForGood participants, in words (for configs and reports).
pub(crate) const PFG_FILTER: &str = "persuadees with a recorded donation between $0 and $2 \
     (the task payment); rows with no donation, a negative one or one above $2 are dropped";

/// File name of the participant table inside a dataset directory.
pub const FULL_INFO: &str = "full_info.csv";
/// File name of the utterance table inside a dataset directory.
pub(crate) const FULL_DIALOG: &str = "full_dialog.csv";
/// The task payment: a consistent donation lies in `0.0..=MAX_DONATION` dollars.
pub const MAX_DONATION: f64 = 2.0;
/// The usual size of the held-out set of persuadees.
pub const DEFAULT_TEST_SIZE: usize = 200;
/// A moral foundation counts as "strong" for a participant when its score (1 to 6 scale) is
/// at least this: a full point above the scale midpoint of 3.5. A fixed threshold keeps the
/// meaning the same for every participant, unlike a per-person median.
pub const STRONG_MORAL_FOUNDATION: f64 = 4.5;

/// The columns `full_info.csv` must have.
const INFO_COLUMNS: [&str; 37] = [
    "B2",
    "B3",
    "B4",
    "B6",
    "B7",
    "extrovert.x",
    "agreeable.x",
    "conscientious.x",
    "neurotic.x",
    "open.x",
    "care.x",
    "fairness.x",
    "loyalty.x",
    "authority.x",
    "purity.x",
    "freedom.x",
    "conform.x",
    "tradition.x",
    "benevolence.x",
    "universalism.x",
    "self_direction.x",
    "stimulation.x",
    "hedonism.x",
    "achievement.x",
    "power.x",
    "security.x",
    "rational.x",
    "intuitive.x",
    "age.x",
    "sex.x",
    "race.x",
    "edu.x",
    "marital.x",
    "employment.x",
    "income.x",
    "religion.x",
    "ideology.x",
];

/// The columns `full_dialog.csv` must have (its first, unnamed column is a row index).
const DIALOG_COLUMNS: [&str; 4] = ["Unit", "Turn", "B4", "B2"];

/// Annual income brackets for `income.x` codes 1 to 12 (why: see [`income_bracket`]).
/// Rendered text always keeps the code beside the bracket.
const INCOME_BRACKETS: [&str; 12] = [
    "less than $10,000",
    "$10,000 to $19,999",
    "$20,000 to $29,999",
    "$30,000 to $39,999",
    "$40,000 to $49,999",
    "$50,000 to $59,999",
    "$60,000 to $69,999",
    "$70,000 to $79,999",
    "$80,000 to $89,999",
    "$90,000 to $99,999",
    "$100,000 to $149,999",
    "$150,000 or more",
];

/// The annual income bracket for an `income.x` survey code, or `None` for a code outside
/// 1 to 12. Codes 1 to 10 are $10,000 brackets from "less than $10,000" to "$90,000 to
/// $99,999", 11 is "$100,000 to $149,999" and 12 "$150,000 or more". The release ships
/// no codebook: this is the survey platform's standard 12-option income item, which fits
/// the data (codes 1 to 12, with code 11, the one wide bracket, clearly above its
/// neighbours).
pub fn income_bracket(code: u32) -> Option<&'static str> {
    let index = usize::try_from(code.checked_sub(1)?).ok()?;
    INCOME_BRACKETS.get(index).copied()
}

/// Who a participant was in the dialogue (`B4`: 0 = persuader, 1 = persuadee).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PfgRole {
    /// Asked the other participant to donate (code 0).
    Persuader,
    /// Was asked to donate (code 1).
    Persuadee,
}

impl PfgRole {
    /// The dataset's code: 0 for the persuader, 1 for the persuadee.
    pub fn code(self) -> u8 {
        match self {
            PfgRole::Persuader => 0,
            PfgRole::Persuadee => 1,
        }
    }

    /// `persuader` or `persuadee`.
    pub fn as_str(self) -> &'static str {
        match self {
            PfgRole::Persuader => "persuader",
            PfgRole::Persuadee => "persuadee",
        }
    }

    fn parse(cell: &str) -> Option<Self> {
        match cell.trim() {
            "0" | "0.0" => Some(PfgRole::Persuader),
            "1" | "1.0" => Some(PfgRole::Persuadee),
            other if other.eq_ignore_ascii_case("persuader") => Some(PfgRole::Persuader),
            other if other.eq_ignore_ascii_case("persuadee") => Some(PfgRole::Persuadee),
            _ => None,
        }
    }
}

impl fmt::Display for PfgRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Big Five personality scores, 1 to 5.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BigFive {
    /// Extraversion (`extrovert.x`).
    pub extraversion: Option<f64>,
    /// Agreeableness (`agreeable.x`).
    pub agreeableness: Option<f64>,
    /// Conscientiousness (`conscientious.x`).
    pub conscientiousness: Option<f64>,
    /// Neuroticism (`neurotic.x`).
    pub neuroticism: Option<f64>,
    /// Openness to experience (`open.x`).
    pub openness: Option<f64>,
}

impl BigFive {
    /// `(trait name, score)` in the conventional order.
    pub(crate) fn traits(&self) -> [(&'static str, Option<f64>); 5] {
        [
            ("extraversion", self.extraversion),
            ("agreeableness", self.agreeableness),
            ("conscientiousness", self.conscientiousness),
            ("neuroticism", self.neuroticism),
            ("openness", self.openness),
        ]
    }
}

/// Moral Foundations scores, 1 to 6, plus the study's extra freedom (liberty) item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MoralFoundations {
    /// Care/harm (`care.x`).
    pub care: Option<f64>,
    /// Fairness/cheating (`fairness.x`).
    pub fairness: Option<f64>,
    /// Loyalty/betrayal (`loyalty.x`).
    pub loyalty: Option<f64>,
    /// Authority/subversion (`authority.x`).
    pub authority: Option<f64>,
    /// Purity/degradation (`purity.x`).
    pub purity: Option<f64>,
    /// Liberty/oppression (`freedom.x`).
    pub freedom: Option<f64>,
}

impl MoralFoundations {
    /// `(foundation name, score)` in the conventional order.
    pub fn foundations(&self) -> [(&'static str, Option<f64>); 6] {
        [
            ("care", self.care),
            ("fairness", self.fairness),
            ("loyalty", self.loyalty),
            ("authority", self.authority),
            ("purity", self.purity),
            ("freedom", self.freedom),
        ]
    }
}

/// Schwartz basic values scores, 1 to 6.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchwartzValues {
    /// Conformity (`conform.x`).
    pub conformity: Option<f64>,
    /// Tradition (`tradition.x`).
    pub tradition: Option<f64>,
    /// Benevolence (`benevolence.x`).
    pub benevolence: Option<f64>,
    /// Universalism (`universalism.x`).
    pub universalism: Option<f64>,
    /// Self-direction (`self_direction.x`).
    pub self_direction: Option<f64>,
    /// Stimulation (`stimulation.x`).
    pub stimulation: Option<f64>,
    /// Hedonism (`hedonism.x`).
    pub hedonism: Option<f64>,
    /// Achievement (`achievement.x`).
    pub achievement: Option<f64>,
    /// Power (`power.x`).
    pub power: Option<f64>,
    /// Security (`security.x`).
    pub security: Option<f64>,
}

impl SchwartzValues {
    /// `(value name, score)` in the dataset's column order.
    pub fn values(&self) -> [(&'static str, Option<f64>); 10] {
        [
            ("conformity", self.conformity),
            ("tradition", self.tradition),
            ("benevolence", self.benevolence),
            ("universalism", self.universalism),
            ("self-direction", self.self_direction),
            ("stimulation", self.stimulation),
            ("hedonism", self.hedonism),
            ("achievement", self.achievement),
            ("power", self.power),
            ("security", self.security),
        ]
    }
}

/// One row of `full_info.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PfgParticipant {
    /// 1-based data row in `full_info.csv` (the header is not counted).
    pub row: u64,
    /// The dialogue's id (`B2`).
    pub dialogue_id: String,
    /// The participant's id (`B3`).
    pub user_id: String,
    /// The participant's role (`B4`).
    pub role: PfgRole,
    /// The actual donation in US dollars (`B6`).
    pub donation: Option<f64>,
    /// Number of turns in the dialogue (`B7`).
    pub turns: Option<u32>,
    /// Big Five personality scores.
    pub big_five: BigFive,
    /// Moral Foundations scores.
    pub moral_foundations: MoralFoundations,
    /// Schwartz basic values scores.
    pub values: SchwartzValues,
    /// Rational decision style, 1 to 5.
    pub rational: Option<f64>,
    /// Intuitive decision style, 1 to 5.
    pub intuitive: Option<f64>,
    /// Age in years (`age.x`).
    pub age: Option<u32>,
    /// Sex as answered (`sex.x`).
    pub sex: Option<String>,
    /// Race as answered (`race.x`).
    pub race: Option<String>,
    /// Highest education as answered (`edu.x`).
    pub education: Option<String>,
    /// Marital status as answered (`marital.x`).
    pub marital_status: Option<String>,
    /// Employment as answered (`employment.x`).
    pub employment: Option<String>,
    /// Survey code 1 to 12; see [`income_bracket`].
    pub income_code: Option<u32>,
    /// Religion as answered (`religion.x`).
    pub religion: Option<String>,
    /// Political ideology as answered (`ideology.x`).
    pub ideology: Option<String>,
}

/// One row of `full_dialog.csv`, in file order within its dialogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PfgUtterance {
    /// 0-based turn number; a turn may hold several utterances of one speaker.
    pub turn: u32,
    /// Who spoke (`B4`).
    pub role: PfgRole,
    /// The text as written (not trimmed).
    pub text: String,
}

/// Both tables of the dataset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PfgDataset {
    /// Participants in file order.
    pub participants: Vec<PfgParticipant>,
    /// Utterances per dialogue id, each in file order.
    pub dialogues: BTreeMap<String, Vec<PfgUtterance>>,
}

/// Rows dropped by [`PfgDataset::filter_consistent`] for one role, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DroppedCounts {
    /// No donation recorded.
    pub missing: usize,
    /// A donation below $0.
    pub negative: usize,
    /// A donation above [`MAX_DONATION`], impossible out of a $2 payment.
    pub above_max: usize,
}

impl DroppedCounts {
    /// Rows dropped for any reason.
    pub fn total(&self) -> usize {
        self.missing + self.negative + self.above_max
    }
}

/// What [`PfgDataset::filter_consistent`] kept and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FilterReport {
    /// Participants before filtering.
    pub total: usize,
    /// Participants kept.
    pub kept: usize,
    /// Persuadees kept (the population that simulated donations are compared with).
    pub kept_persuadees: usize,
    /// Persuaders dropped, by reason.
    pub persuaders: DroppedCounts,
    /// Persuadees dropped, by reason.
    pub persuadees: DroppedCounts,
}

impl FilterReport {
    /// Dropped rows of both roles together, by reason.
    pub fn dropped(&self) -> DroppedCounts {
        DroppedCounts {
            missing: self.persuaders.missing + self.persuadees.missing,
            negative: self.persuaders.negative + self.persuadees.negative,
            above_max: self.persuaders.above_max + self.persuadees.above_max,
        }
    }
}

impl fmt::Display for FilterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.dropped();
        write!(
            f,
            "kept {} of {} participants ({} persuadees); dropped {} with no donation, {} below $0, \
             {} above ${MAX_DONATION} (persuadees: {}, {}, {})",
            self.kept,
            self.total,
            self.kept_persuadees,
            d.missing,
            d.negative,
            d.above_max,
            self.persuadees.missing,
            self.persuadees.negative,
            self.persuadees.above_max
        )
    }
}

/// Which filtered persuadees a study uses: the comparison protocol's held-out `test` part
/// (the default everywhere), the `train` rest, or `all` of them. Membership is a function
/// of the data alone; see [`PfgDataset::protocol_split`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The held-out test set ([`DEFAULT_TEST_SIZE`] persuadees).
    #[default]
    Test,
    /// The persuadees not in the test set.
    Train,
    /// Every persuadee kept by the filter.
    All,
}

impl Split {
    /// `test`, `train` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::All => "all",
            Split::Test => "test",
            Split::Train => "train",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown split name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown split `{0}`; valid splits: test, train, all")]
pub struct UnknownSplit(pub String);

impl std::str::FromStr for Split {
    type Err = UnknownSplit;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(Split::All),
            "test" => Ok(Split::Test),
            "train" => Ok(Split::Train),
            _ => Err(UnknownSplit(s.to_string())),
        }
    }
}

/// The seed of the protocol's train/test split. It is fixed, so split membership never
/// depends on an experiment's or a bootstrap's seed: the same data always gives the same
/// held-out people.
pub const SPLIT_SEED: u64 = 20_190_601;

/// The persuadees of one split of the comparison protocol, and how they were chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolSplit {
    /// The split taken.
    pub split: Split,
    /// The split's persuadees, ordered by dialogue id.
    pub persuadees: Vec<PfgParticipant>,
    /// What the consistency filter kept and dropped (before splitting).
    pub filter: FilterReport,
    /// Persuadees kept by the filter (all splits together).
    pub kept_persuadees: usize,
    /// Size of the test part.
    pub test_size: usize,
}

/// A train/test partition of persuadees, each part in dataset order.
#[derive(Debug, Clone, PartialEq)]
pub struct PfgSplit {
    /// The persuadees not in the test part.
    pub train: Vec<PfgParticipant>,
    /// The held-out persuadees.
    pub test: Vec<PfgParticipant>,
}

impl PfgDataset {
    /// Reads `full_info.csv` and `full_dialog.csv` from `dir`.
    pub fn load(dir: impl AsRef<Path>) -> Result<PfgDataset, DataError> {
        let dir = dir.as_ref();
        Ok(PfgDataset {
            participants: read_full_info(dir.join(FULL_INFO))?,
            dialogues: read_full_dialog(dir.join(FULL_DIALOG))?,
        })
    }

    /// Participants of one role, in dataset order.
    pub fn with_role(&self, role: PfgRole) -> impl Iterator<Item = &PfgParticipant> {
        self.participants.iter().filter(move |p| p.role == role)
    }

    /// The participant of `role` in dialogue `dialogue_id`.
    pub fn participant(&self, dialogue_id: &str, role: PfgRole) -> Option<&PfgParticipant> {
        self.participants.iter().find(|p| p.role == role && p.dialogue_id == dialogue_id)
    }

    /// The utterances of one dialogue, in file order.
    pub fn dialogue(&self, dialogue_id: &str) -> Option<&[PfgUtterance]> {
        self.dialogues.get(dialogue_id).map(Vec::as_slice)
    }

    /// Personas for every participant of `role`, in dataset order.
    pub fn personas(&self, role: PfgRole) -> Vec<Persona> {
        self.with_role(role).map(persona_from_participant).collect()
    }

    /// Keeps the participants whose donation is consistent with the task: recorded, at
    /// least $0 and at most [`MAX_DONATION`] (the $2 payment). The README counts 35
    /// persuadees above $2, up to $700, which would dominate any distance to simulated
    /// donations. Dialogues are all kept: their text is valid whatever the donation.
    pub fn filter_consistent(&self) -> (PfgDataset, FilterReport) {
        let mut report = FilterReport { total: self.participants.len(), ..FilterReport::default() };
        let mut kept = Vec::with_capacity(self.participants.len());
        for p in &self.participants {
            let counts = match p.role {
                PfgRole::Persuader => &mut report.persuaders,
                PfgRole::Persuadee => &mut report.persuadees,
            };
            match p.donation {
                None => counts.missing += 1,
                Some(d) if d < 0.0 => counts.negative += 1,
                Some(d) if d > MAX_DONATION => counts.above_max += 1,
                Some(_) => kept.push(p.clone()),
            }
        }
        report.kept = kept.len();
        report.kept_persuadees = kept.iter().filter(|p| p.role == PfgRole::Persuadee).count();
        (PfgDataset { participants: kept, dialogues: self.dialogues.clone() }, report)
    }

    /// Splits this dataset's persuadees into `test_size` test and the rest train, by a
    /// Fisher–Yates shuffle driven by [`crate::seed::rng`]`(seed)`. Only the generator's raw
    /// 64-bit output is used (no library shuffle), so a seed gives the same split on every
    /// platform and dependency version. Call it on the output of
    /// [`PfgDataset::filter_consistent`] to split the consistent persuadees. The unit is the
    /// persuadee row, i.e. the dialogue: some people took part in several dialogues, and
    /// their rows are assigned independently.
    pub fn train_test_split(&self, test_size: usize, seed: u64) -> Result<PfgSplit, DataError> {
        let persuadees: Vec<&PfgParticipant> = self.with_role(PfgRole::Persuadee).collect();
        if test_size > persuadees.len() {
            return Err(DataError::SplitTooLarge { requested: test_size, available: persuadees.len() });
        }
        let mut order: Vec<usize> = (0..persuadees.len()).collect();
        let mut rng = crate::seed::rng(seed);
        for i in (1..order.len()).rev() {
            // Multiply-shift maps a 64-bit draw onto 0..=i; its bias is below 2^-50 here.
            let j = ((u128::from(rng.next_u64()) * (i as u128 + 1)) >> 64) as usize;
            order.swap(i, j);
        }
        let mut test_idx = order[..test_size].to_vec();
        let mut train_idx = order[test_size..].to_vec();
        test_idx.sort_unstable();
        train_idx.sort_unstable();
        let pick = |idx: &[usize]| idx.iter().map(|&i| persuadees[i].clone()).collect::<Vec<_>>();
        Ok(PfgSplit { train: pick(&train_idx), test: pick(&test_idx) })
    }
}

impl PfgDataset {
    /// The comparison protocol's split: [`PfgDataset::filter_consistent`], then the kept
    /// persuadees ordered by dialogue id (a stable order, whatever the file's row order),
    /// then [`PfgDataset::train_test_split`] of [`DEFAULT_TEST_SIZE`] (or all, if fewer are
    /// kept) with the fixed [`SPLIT_SEED`]. Every part is returned ordered by dialogue id.
    /// `vsim run --population pfg:DIR` simulates these people and `vsim eval --human
    /// pfg:DIR` compares with the same ones.
    pub fn protocol_split(&self, split: Split) -> Result<ProtocolSplit, DataError> {
        let (kept, filter) = self.filter_consistent();
        let mut persuadees: Vec<PfgParticipant> = kept.with_role(PfgRole::Persuadee).cloned().collect();
        persuadees.sort_by(|a, b| a.dialogue_id.cmp(&b.dialogue_id).then(a.row.cmp(&b.row)));
        let kept_persuadees = persuadees.len();
        let test_size = DEFAULT_TEST_SIZE.min(kept_persuadees);
        let persuadees = match split {
            Split::All => persuadees,
            Split::Test | Split::Train => {
                let ordered = PfgDataset { participants: persuadees, dialogues: BTreeMap::new() };
                let parts = ordered.train_test_split(test_size, SPLIT_SEED)?;
                if split == Split::Test {
                    parts.test
                } else {
                    parts.train
                }
            }
        };
        Ok(ProtocolSplit { split, persuadees, filter, kept_persuadees, test_size })
    }
}

/// Personas for every participant of `role` in a `full_info.csv` at `path`, in file order.
/// Persona ids are `{dialogue_id}-{role}`; `source` names the dataset row.
pub fn population_from_full_info(path: impl AsRef<Path>, role: PfgRole) -> Result<Vec<Persona>, DataError> {
    Ok(read_full_info(path)?.iter().filter(|p| p.role == role).map(persona_from_participant).collect())
}

/// A persona for a study participant. Attributes, in this order, each only when known:
/// `age`, `sex`, `race`, `education`, `income` (bracket from [`income_bracket`], with the
/// survey code), `employment`, `marital_status`, `religion`, `political_ideology`;
/// `personality` (Big Five scores, with low < 2.5 <= moderate <= 3.5 < high);
/// `strongest_values` (the three highest Schwartz values, plus any tied with the third;
/// left out when all known values are equal, as then none stands out);
/// `strong_moral_foundations` (those scoring at least [`STRONG_MORAL_FOUNDATION`], or
/// "none ..." when none does); `decision_style` (rational vs intuitive: leaning one way when
/// the scores differ by 0.5 or more). The id is `{dialogue_id}-{role}` with characters
/// outside `[A-Za-z0-9_-]` replaced by `_`.
pub fn persona_from_participant(p: &PfgParticipant) -> Persona {
    let mut persona = Persona::new(persona_id(&p.dialogue_id, p.role));
    persona.source = Some(format!(
        "PersuasionForGood {FULL_INFO} row {}: participant {} ({}) in dialogue {}",
        p.row, p.user_id, p.role, p.dialogue_id
    ));
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !is_missing_value(v)) {
            persona.set_attribute(key, v);
        }
    };
    put("age", p.age.map(|a| a.to_string()));
    put("sex", p.sex.clone());
    put("race", p.race.clone());
    put("education", p.education.clone());
    put("income", p.income_code.map(income_text));
    put("employment", p.employment.clone());
    put("marital_status", p.marital_status.clone());
    put("religion", p.religion.clone());
    put("political_ideology", p.ideology.clone());
    put("personality", personality_text(&p.big_five));
    put("strongest_values", strongest_values_text(&p.values));
    put("strong_moral_foundations", moral_text(&p.moral_foundations));
    put("decision_style", decision_style_text(p.rational, p.intuitive));
    persona
}

impl PfgParticipant {
    /// The id of this participant's persona, `{dialogue_id}-{role}`: the population id a
    /// simulated dialogue carries, and the key that pairs it with the real participant.
    pub fn persona_id(&self) -> String {
        persona_id(&self.dialogue_id, self.role)
    }
}

fn persona_id(dialogue_id: &str, role: PfgRole) -> String {
    let clean: String = dialogue_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    format!("{clean}-{role}")
}

fn income_text(code: u32) -> String {
    match income_bracket(code) {
        Some(bracket) => format!("{bracket} a year (survey code {code})"),
        None => format!("survey code {code} (no known bracket)"),
    }
}

fn personality_text(big_five: &BigFive) -> Option<String> {
    let parts: Vec<String> = big_five
        .traits()
        .iter()
        .filter_map(|(name, score)| {
            score.map(|s| {
                let level = if s < 2.5 {
                    "low"
                } else if s > 3.5 {
                    "high"
                } else {
                    "moderate"
                };
                format!("{name} {s:.1} ({level})")
            })
        })
        .collect();
    (!parts.is_empty()).then(|| format!("Big Five, each scored 1 to 5: {}", parts.join(", ")))
}

fn strongest_values_text(values: &SchwartzValues) -> Option<String> {
    let mut scored: Vec<(usize, &str, f64)> =
        values.values().iter().enumerate().filter_map(|(i, (n, s))| s.map(|s| (i, *n, s))).collect();
    let max = scored.iter().map(|s| s.2).fold(f64::NEG_INFINITY, f64::max);
    let min = scored.iter().map(|s| s.2).fold(f64::INFINITY, f64::min);
    if scored.is_empty() || (scored.len() > 1 && max == min) {
        return None;
    }
    scored.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    let cutoff = scored[scored.len().min(3) - 1].2;
    let top: Vec<String> =
        scored.iter().take_while(|s| s.2 >= cutoff).map(|(_, n, s)| format!("{n} {s:.1}")).collect();
    Some(format!("{} (Schwartz values, each scored 1 to 6)", top.join(", ")))
}

fn moral_text(moral: &MoralFoundations) -> Option<String> {
    let foundations = moral.foundations();
    if foundations.iter().all(|(_, s)| s.is_none()) {
        return None;
    }
    let strong: Vec<String> = foundations
        .iter()
        .filter_map(|(n, s)| s.filter(|s| *s >= STRONG_MORAL_FOUNDATION).map(|s| format!("{n} {s:.1}")))
        .collect();
    Some(if strong.is_empty() {
        format!("none (no foundation scored {STRONG_MORAL_FOUNDATION} or more on a 1 to 6 scale)")
    } else {
        format!("{} (scored {STRONG_MORAL_FOUNDATION} or more on a 1 to 6 scale)", strong.join(", "))
    })
}

fn decision_style_text(rational: Option<f64>, intuitive: Option<f64>) -> Option<String> {
    match (rational, intuitive) {
        (Some(r), Some(i)) => {
            let leaning = if r - i >= 0.5 {
                "more rational than intuitive"
            } else if i - r >= 0.5 {
                "more intuitive than rational"
            } else {
                "about equally rational and intuitive"
            };
            Some(format!("{leaning} (rational {r:.1}, intuitive {i:.1}, each scored 1 to 5)"))
        }
        (Some(r), None) => Some(format!("rational {r:.1} (scored 1 to 5)")),
        (None, Some(i)) => Some(format!("intuitive {i:.1} (scored 1 to 5)")),
        (None, None) => None,
    }
}

/// Reads every participant row of a `full_info.csv`. A dialogue and role given twice is
/// refused, naming both rows: a repeated participant would change who is in the filtered
/// population and its train/test split.
pub fn read_full_info(path: impl AsRef<Path>) -> Result<Vec<PfgParticipant>, DataError> {
    let path = path.as_ref();
    let (mut reader, cols) = open_csv(path, &INFO_COLUMNS)?;
    let mut out = Vec::new();
    let mut seen: HashMap<(String, u8), u64> = HashMap::new();
    for (index, result) in reader.records().enumerate() {
        let record = result.map_err(|e| csv_error(path, e))?;
        let row = Row::new(path, &record, &cols, index);
        let score = |column: &str| row.opt_f64(column);
        let dialogue_id = row.required_text("B2", "a dialogue id")?;
        let role = row.role("B4")?;
        if let Some(first) = seen.insert((dialogue_id.clone(), role.code()), row.row) {
            return Err(row.error(
                "B2",
                &format!(
                    "one row per dialogue and role; row {first} is already this dialogue's {}",
                    role.as_str()
                ),
            ));
        }
        out.push(PfgParticipant {
            row: row.row,
            dialogue_id,
            user_id: row.required_text("B3", "a participant id")?,
            role,
            donation: row.opt_f64("B6")?,
            turns: row.opt_whole("B7", u32::MAX)?,
            big_five: BigFive {
                extraversion: score("extrovert.x")?,
                agreeableness: score("agreeable.x")?,
                conscientiousness: score("conscientious.x")?,
                neuroticism: score("neurotic.x")?,
                openness: score("open.x")?,
            },
            moral_foundations: MoralFoundations {
                care: score("care.x")?,
                fairness: score("fairness.x")?,
                loyalty: score("loyalty.x")?,
                authority: score("authority.x")?,
                purity: score("purity.x")?,
                freedom: score("freedom.x")?,
            },
            values: SchwartzValues {
                conformity: score("conform.x")?,
                tradition: score("tradition.x")?,
                benevolence: score("benevolence.x")?,
                universalism: score("universalism.x")?,
                self_direction: score("self_direction.x")?,
                stimulation: score("stimulation.x")?,
                hedonism: score("hedonism.x")?,
                achievement: score("achievement.x")?,
                power: score("power.x")?,
                security: score("security.x")?,
            },
            rational: score("rational.x")?,
            intuitive: score("intuitive.x")?,
            age: row.opt_whole("age.x", 150)?,
            sex: row.opt_text("sex.x"),
            race: row.opt_text("race.x"),
            education: row.opt_text("edu.x"),
            marital_status: row.opt_text("marital.x"),
            employment: row.opt_text("employment.x"),
            income_code: row.opt_whole("income.x", u32::MAX)?,
            religion: row.opt_text("religion.x"),
            ideology: row.opt_text("ideology.x"),
        });
    }
    Ok(out)
}

/// Reads a `full_dialog.csv` into utterances per dialogue id, each in file order.
pub fn read_full_dialog(path: impl AsRef<Path>) -> Result<BTreeMap<String, Vec<PfgUtterance>>, DataError> {
    let path = path.as_ref();
    let (mut reader, cols) = open_csv(path, &DIALOG_COLUMNS)?;
    let mut out: BTreeMap<String, Vec<PfgUtterance>> = BTreeMap::new();
    for (index, result) in reader.records().enumerate() {
        let record = result.map_err(|e| csv_error(path, e))?;
        let row = Row::new(path, &record, &cols, index);
        let turn = row.opt_whole("Turn", u32::MAX)?.ok_or_else(|| row.error("Turn", "a turn number"))?;
        let utterance = PfgUtterance { turn, role: row.role("B4")?, text: row.cell("Unit").to_string() };
        out.entry(row.required_text("B2", "a dialogue id")?).or_default().push(utterance);
    }
    Ok(out)
}

fn open_csv(
    path: &Path,
    required: &[&str],
) -> Result<(csv::Reader<File>, HashMap<String, usize>), DataError> {
    let file = File::open(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(file);
    let headers = reader.headers().map_err(|e| csv_error(path, e))?;
    let index: HashMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim_start_matches('\u{feff}').trim().to_string(), i))
        .collect();
    let mut cols = HashMap::with_capacity(required.len());
    for column in required {
        let i = index.get(*column).ok_or_else(|| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: (*column).to_string(),
            expected: required.join(", "),
        })?;
        cols.insert((*column).to_string(), *i);
    }
    Ok((reader, cols))
}

fn csv_error(path: &Path, source: csv::Error) -> DataError {
    let line = source.position().map_or(0, |p| p.line());
    DataError::Csv { path: path.to_path_buf(), line, source }
}

/// One CSV record with what is needed to report an error against it.
struct Row<'a> {
    path: &'a Path,
    record: &'a csv::StringRecord,
    cols: &'a HashMap<String, usize>,
    row: u64,
    line: u64,
}

impl<'a> Row<'a> {
    fn new(
        path: &'a Path,
        record: &'a csv::StringRecord,
        cols: &'a HashMap<String, usize>,
        index: usize,
    ) -> Self {
        let row = index as u64 + 1;
        let line = record.position().map_or(row + 1, |p| p.line());
        Row { path, record, cols, row, line }
    }

    fn cell(&self, column: &str) -> &'a str {
        self.cols.get(column).and_then(|&i| self.record.get(i)).unwrap_or("")
    }

    fn error(&self, column: &str, expected: &str) -> DataError {
        DataError::Field {
            path: PathBuf::from(self.path),
            row: self.row,
            line: self.line,
            column: column.to_string(),
            value: self.cell(column).to_string(),
            expected: expected.to_string(),
        }
    }

    fn opt_text(&self, column: &str) -> Option<String> {
        let cell = self.cell(column).trim();
        (!is_missing_value(cell)).then(|| cell.to_string())
    }

    fn required_text(&self, column: &str, expected: &str) -> Result<String, DataError> {
        self.opt_text(column).ok_or_else(|| self.error(column, expected))
    }

    fn role(&self, column: &str) -> Result<PfgRole, DataError> {
        PfgRole::parse(self.cell(column)).ok_or_else(|| self.error(column, "0 (persuader) or 1 (persuadee)"))
    }

    fn opt_f64(&self, column: &str) -> Result<Option<f64>, DataError> {
        let Some(text) = self.opt_text(column) else { return Ok(None) };
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(self.error(column, "a number, or an empty cell / NA when missing")),
        }
    }

    fn opt_whole(&self, column: &str, max: u32) -> Result<Option<u32>, DataError> {
        let Some(v) = self.opt_f64(column)? else { return Ok(None) };
        if v.fract() == 0.0 && v >= 0.0 && v <= f64::from(max) {
            Ok(Some(v as u32))
        } else {
            Err(self.error(
                column,
                &format!("a whole number from 0 to {max}, or an empty cell / NA when missing"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn income_codes_map_to_brackets() {
        assert_eq!(income_bracket(1), Some("less than $10,000"));
        assert_eq!(income_bracket(10), Some("$90,000 to $99,999"));
        assert_eq!(income_bracket(12), Some("$150,000 or more"));
        assert_eq!(income_bracket(0), None);
        assert_eq!(income_bracket(13), None);
    }

    #[test]
    fn ties_at_the_third_value_are_all_listed_and_flat_profiles_list_none() {
        let mut v = SchwartzValues {
            conformity: Some(6.0),
            tradition: Some(2.0),
            benevolence: Some(5.0),
            universalism: Some(5.0),
            security: Some(5.0),
            power: Some(1.0),
            ..SchwartzValues::default()
        };
        let text = strongest_values_text(&v).unwrap_or_default();
        assert!(
            text.starts_with("conformity 6.0, benevolence 5.0, universalism 5.0, security 5.0 ("),
            "{text}"
        );
        v = SchwartzValues { conformity: Some(4.0), power: Some(4.0), ..SchwartzValues::default() };
        assert_eq!(strongest_values_text(&v), None);
        assert_eq!(strongest_values_text(&SchwartzValues::default()), None);
    }

    #[test]
    fn decision_style_leans_only_on_a_half_point_gap() {
        let text = |r, i| decision_style_text(Some(r), Some(i)).unwrap_or_default();
        assert!(text(4.0, 2.0).starts_with("more rational"));
        assert!(text(3.5, 4.0).starts_with("more intuitive"));
        assert!(text(3.5, 3.75).starts_with("about equally"));
        assert_eq!(decision_style_text(None, None), None);
    }

    #[test]
    fn persona_ids_are_sanitised() {
        assert_eq!(persona_id("2018 x/y", PfgRole::Persuadee), "2018_x_y-persuadee");
        assert!(crate::persona::check_id(&persona_id("a.b:c", PfgRole::Persuader)).is_ok());
    }
}
