//! The registry of distances between two samples: each distance vsim knows is declared here
//! once, as a [`DistanceDef`] in [`DISTANCES`], with its key, how it is computed and its
//! help. Everything that offers distances reads this list: `vsim stats` builds one
//! subcommand per [`DistanceDef::command`] from it, Python's `vsim.stats` one function per
//! key, the survey evaluation computes its distances through it, and the evaluation of
//! dialogue runs (`eval::registry`) names the entry behind each distance it stores.
//!
//! # Adding a distance
//!
//! Write the statistic (usually in [`super::compare`]), then add a `const` [`DistanceDef`]
//! beside the others and list it in [`DISTANCES`]. `vsim stats` and `vsim.stats` offer it
//! from then on; for `vsim eval` to store it too, add its entry to the evaluation's registry.

use super::compare::{
    jensen_shannon, l1_density_pfg, l1_histogram, l1_paired, total_variation, wasserstein1, Bins, PFG_BINS,
};
use super::ks::{ks_2samp, KsMode, KsResult};
use super::StatsError;

/// A statistic of two inputs.
pub type TwoInputs = fn(&[f64], &[f64]) -> Result<f64, StatsError>;
/// A statistic of two samples over bins.
pub(crate) type TwoBinned = fn(&[f64], &[f64], &Bins) -> Result<f64, StatsError>;
/// A test of two samples, with its p-value.
pub type TwoSampleTest = fn(&[f64], &[f64], KsMode) -> Result<KsResult, StatsError>;

/// How a distance is computed from its two inputs, and so what its inputs are.
#[derive(Clone, Copy)]
pub enum Compute {
    /// A statistic of two samples of numbers.
    Samples(TwoInputs),
    /// A statistic of two samples of numbers matched element by element (equal lengths).
    Paired(TwoInputs),
    /// A statistic of two samples of numbers over bins.
    Binned(TwoBinned),
    /// A test of two samples of numbers, with its p-value, under a [`KsMode`].
    Test(TwoSampleTest),
    /// A distance between two distributions over the same categories, given as counts or
    /// weights (each normalised first).
    Distributions(TwoInputs),
}

impl std::fmt::Debug for Compute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Samples(_) => "Samples",
            Self::Paired(_) => "Paired",
            Self::Binned(_) => "Binned",
            Self::Test(_) => "Test",
            Self::Distributions(_) => "Distributions",
        })
    }
}

/// One distance between two samples.
#[derive(Debug, Clone, Copy)]
pub struct DistanceDef {
    /// Its name: its key in `metrics.json` and its function in Python's `vsim.stats`.
    pub key: &'static str,
    /// The `vsim stats` subcommand that computes it. Distances that share a command are its
    /// variants: a [`Compute::Paired`] one is chosen by a switch for paired samples, a
    /// [`Compute::Binned`] one by giving bins, and the other one is the default.
    pub command: &'static str,
    /// The symbol its value is shown with, e.g. `W1`.
    pub symbol: &'static str,
    /// What it is, in one line.
    pub about: &'static str,
    /// How it is defined and what it reads, in a paragraph.
    pub help: &'static str,
    /// The bins it always uses, when it is binned without being told (shown with its value).
    pub fixed_bins: Option<Bins>,
    /// How it is computed.
    pub compute: Compute,
}

impl DistanceDef {
    /// Its name among the variants of its command: the key without the command's prefix
    /// (`l1_paired` → `paired`), or the whole key.
    pub fn variant(&self) -> &'static str {
        self.key.strip_prefix(self.command).and_then(|v| v.strip_prefix('_')).unwrap_or(self.key)
    }

    /// Its statistic on two inputs, with `bins` for a [`Compute::Binned`] one (for a
    /// [`Compute::Test`], the statistic as its asymptotic mode computes it, which may differ
    /// from the exact mode's in the last bit).
    pub fn statistic(&self, a: &[f64], b: &[f64], bins: Option<&Bins>) -> Result<f64, StatsError> {
        match self.compute {
            Compute::Samples(f) | Compute::Paired(f) | Compute::Distributions(f) => f(a, b),
            Compute::Binned(f) => match bins.or(self.fixed_bins.as_ref()) {
                Some(bins) => f(a, b, bins),
                None => Err(StatsError::InvalidParameter {
                    name: "bins",
                    reason: format!("{} needs bins", self.key),
                }),
            },
            Compute::Test(f) => f(a, b, KsMode::Asymptotic).map(|r| r.statistic),
        }
    }
}

/// The two-sample Kolmogorov–Smirnov test.
pub const KS: DistanceDef = DistanceDef {
    key: "ks",
    command: "ks",
    symbol: "D",
    about: "Two-sample Kolmogorov–Smirnov test (two-sided), as scipy.stats.ks_2samp.",
    help: "D = sup |F_a − F_b| over the two empirical CDFs, with its two-sided p-value: exact for \
           samples up to 10,000 values (auto), else asymptotic, as SciPy.",
    fixed_bins: None,
    compute: Compute::Test(ks_2samp),
};

/// Mean absolute difference of matched values.
pub(crate) const L1_PAIRED: DistanceDef = DistanceDef {
    key: "l1_paired",
    command: "l1",
    symbol: "L1",
    about: "Mean absolute difference of paired values: mean |a_i − b_i|.",
    help: "The samples are matched element by element (equal lengths, same order), e.g. each \
           simulated person against the same person's real answer.",
    fixed_bins: None,
    compute: Compute::Paired(l1_paired),
};

/// L1 between the normalised histograms of two samples over given bins.
pub(crate) const L1_HISTOGRAM: DistanceDef = DistanceDef {
    key: "l1_histogram",
    command: "l1",
    symbol: "L1",
    about: "L1 distance between the normalised histograms of two samples over N equal bins of [LO, HI].",
    help: "L1 between the normalised histograms over N equal bins of [LO, HI] (edges as \
           numpy.linspace), in [0, 2].",
    fixed_bins: None,
    compute: Compute::Binned(l1_histogram),
};

/// The PersuasionForGood donation-density L1.
pub(crate) const L1_DENSITY_PFG: DistanceDef = DistanceDef {
    key: "l1_density_pfg",
    command: "l1",
    symbol: "L1",
    about: "L1 distance between the PersuasionForGood donation densities of two samples.",
    help: "The PersuasionForGood donation variant: histograms with edges \
           numpy.linspace(0, 2, 21) (20 bins of $0.10) as densities, L1 = sum |p - q| * 0.1; in \
           [0, 2]. Values outside [0, 2] are ignored.",
    fixed_bins: Some(PFG_BINS),
    compute: Compute::Samples(l1_density_pfg),
};

/// The first Wasserstein distance.
pub(crate) const WASSERSTEIN1: DistanceDef = DistanceDef {
    key: "wasserstein1",
    command: "wasserstein",
    symbol: "W1",
    about: "First Wasserstein (earth mover's) distance between two samples of numbers.",
    help: "As scipy.stats.wasserstein_distance: the area between the two empirical CDFs, in the \
           units of the values.",
    fixed_bins: None,
    compute: Compute::Samples(wasserstein1),
};

/// Total variation distance between two distributions over categories.
pub(crate) const TOTAL_VARIATION: DistanceDef = DistanceDef {
    key: "total_variation",
    command: "tv",
    symbol: "TV",
    about: "Total variation distance between two distributions over the same categories.",
    help: "TV = 1/2 sum |p - q| over the categories, each distribution normalised first; in [0, 1].",
    fixed_bins: None,
    compute: Compute::Distributions(total_variation),
};

/// Jensen–Shannon divergence (bits) between two distributions over categories.
pub(crate) const JENSEN_SHANNON: DistanceDef = DistanceDef {
    key: "jensen_shannon",
    command: "js",
    symbol: "JS divergence (bits)",
    about: "Jensen–Shannon divergence (bits) between two distributions over the same categories.",
    help: "The divergence uses base-2 logarithms and lies in [0, 1]; its square root is the \
           Jensen–Shannon distance that scipy.spatial.distance.jensenshannon(p, q, base=2) returns.",
    fixed_bins: None,
    compute: Compute::Distributions(jensen_shannon),
};

/// Every distance, in the order `vsim stats` lists them; within a command, its variants in
/// the order its help describes them.
pub const DISTANCES: &[DistanceDef] =
    &[KS, L1_DENSITY_PFG, L1_HISTOGRAM, L1_PAIRED, WASSERSTEIN1, TOTAL_VARIATION, JENSEN_SHANNON];

/// The distance named `key`.
pub fn distance(key: &str) -> Option<&'static DistanceDef> {
    DISTANCES.iter().find(|d| d.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_commands_have_one_default() {
        let mut keys: Vec<&str> = DISTANCES.iter().map(|d| d.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), DISTANCES.len());
        let mut commands: Vec<&str> = DISTANCES.iter().map(|d| d.command).collect();
        commands.dedup();
        for c in commands {
            let defaults = DISTANCES
                .iter()
                .filter(|d| d.command == c && !matches!(d.compute, Compute::Paired(_) | Compute::Binned(_)))
                .count();
            assert_eq!(defaults, 1, "{c}");
        }
        assert_eq!(L1_PAIRED.variant(), "paired");
        assert_eq!(WASSERSTEIN1.variant(), "wasserstein1");
    }

    #[test]
    fn statistics_are_the_functions() {
        let (a, b) = ([0.0, 0.5, 1.0], [0.25, 1.0, 2.0]);
        let w1 = distance("wasserstein1").unwrap().statistic(&a, &b, None).unwrap();
        assert_eq!(w1, wasserstein1(&a, &b).unwrap());
        assert_eq!(L1_DENSITY_PFG.statistic(&a, &b, None).unwrap(), l1_density_pfg(&a, &b).unwrap());
        let bins = Bins { lo: 0.0, hi: 2.0, n: 4 };
        let h = L1_HISTOGRAM.statistic(&a, &b, Some(&bins)).unwrap();
        assert_eq!(h, l1_histogram(&a, &b, &bins).unwrap());
        assert!(L1_HISTOGRAM.statistic(&a, &b, None).is_err());
        let d = ks_2samp(&a, &b, KsMode::Asymptotic).unwrap().statistic;
        assert_eq!(KS.statistic(&a, &b, None).unwrap(), d);
    }
}
