//! Statistics: distribution comparison and linguistic metrics.
//!
//! - [`ks`]: the two-sample Kolmogorov–Smirnov test, matching `scipy.stats.ks_2samp`;
//! - [`kolmogorov`]: the KS distribution functions behind its p-values;
//! - [`compare`]: L1 (paired and binned), histograms, Wasserstein-1, total variation,
//!   Jensen–Shannon;
//! - [`distances`]: the registry of distances between two samples, which every front end
//!   reads;
//! - [`bootstrap`]: seeded percentile bootstrap confidence intervals;
//! - [`text`]: Distinct-N and the Flesch–Kincaid grade level;
//! - [`read_numbers`]: a sample of numbers from a text file, one per line.
//!
//! Every function validates its input and reports problems as [`StatsError`].

pub mod bootstrap;
pub mod compare;
pub mod distances;
mod error;
pub mod format;
pub mod kolmogorov;
pub mod ks;
mod read;
pub mod text;

pub use bootstrap::{bootstrap_ci, Ci};
pub use compare::{
    category_counts, histogram, jensen_shannon, l1_density_pfg, l1_histogram, l1_paired, total_variation,
    wasserstein1, Bins, CategoryCounts, Histogram, PFG_BINS,
};
pub use error::StatsError;
pub use ks::{ks_2samp, KsMode, KsResult};
pub use read::read_numbers;
