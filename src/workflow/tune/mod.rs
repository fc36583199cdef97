//! Tuning: choosing a role's settings on the train split and proving the choice on
//! held-out people (`vsim tune`).
//!
//! A tune file is a sweep file (the search space as a grid or arms, the population, pinned
//! models, a budget) with a `[tune]` table and `[[baselines]]`. The search runs candidates
//! on seeded samples of the **train** split only, for the simulated people and the human
//! reference alike, with common random numbers (every candidate plays the same people with
//! the same seeds). Successive halving keeps the best `1/eta` each stage while the sample
//! grows; the last stage runs every train person used. The **test** split is read once, at
//! the end, when the chosen setting and the baselines run on it. `tune.json` records which
//! split each stage read.
//!
//! Beside the choice: its selection stability (how often it still wins when the last
//! stage's train people are resampled) and its optimism gap (held-out objective minus train
//! objective).
//!
//! - [`spec`]: the tune file;
//! - [`objective`]: what is minimised;
//! - [`run`]: the stages, the choice and the held-out runs;
//! - [`report`]: `trials.csv`, `report.md` and `report.html`;
//! - [`survey`]: the same for a survey, whose questions are split into train and held-out
//!   items by a fixed rule over their ids.

pub mod objective;
pub mod report;
pub mod run;
pub mod spec;
pub mod survey;

pub use objective::{Distance, Objective, Score};
pub use run::{
    run_tune, stage_sizes, HeldOut, Paused, Stage, Trial, TuneError, TuneOptions, TuneSummary, TUNE_MANIFEST,
};
pub use spec::{load_tune, parse_tune, Strategy, Tune};
