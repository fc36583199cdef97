//! Errors of the statistics functions.

use std::path::PathBuf;

/// Why a statistic could not be computed or a numbers file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// A sample with no values, where at least one is needed.
    #[error("sample `{which}` is empty")]
    EmptySample {
        /// Which argument (e.g. "a", "b", "sim", "human").
        which: &'static str,
    },
    /// A value the statistic cannot use (NaN, or an infinity where finite values are needed).
    #[error("sample `{which}` has invalid value {value} at index {index}")]
    InvalidValue {
        /// Which argument.
        which: &'static str,
        /// Position of the value in the argument.
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// Paired samples of different lengths.
    #[error("paired samples differ in length: {left} vs {right}")]
    LengthMismatch {
        /// Length of the first sample.
        left: usize,
        /// Length of the second sample.
        right: usize,
    },
    /// A parameter outside its domain (bins, confidence level, resample count, ...).
    #[error("invalid {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What was expected.
        reason: String,
    },
    /// No value of a sample falls inside the histogram range, so it cannot be normalised.
    #[error("no value of sample `{which}` lies in the histogram range [{lo}, {hi}]")]
    NoValuesInRange {
        /// Which argument.
        which: &'static str,
        /// Lower edge of the range.
        lo: f64,
        /// Upper edge of the range.
        hi: f64,
    },
    /// A categorical distribution that is not one (negative or non-finite weight, zero total).
    #[error("distribution `{which}` is invalid: {reason}")]
    InvalidDistribution {
        /// Which argument.
        which: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The statistic given to the bootstrap returned a NaN or infinite value.
    #[error("the bootstrapped statistic returned a non-finite value ({value}) on resample {resample}")]
    NonFiniteStatistic {
        /// The resample's index (0-based).
        resample: usize,
        /// The value returned.
        value: f64,
    },
    /// A numbers file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a numbers file that is not a finite number.
    #[error("{}:{line}: expected a finite number, found {text:?}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending text (trimmed, comments removed).
        text: String,
    },
}
