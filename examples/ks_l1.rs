//! Distances between two samples with the library's statistics API: the two-sample
//! Kolmogorov–Smirnov test (exact p-value for small samples, as `scipy.stats.ks_2samp`),
//! histogram L1 over the PersuasionForGood donation bins, the density L1 used in the
//! literature, paired L1 and Wasserstein-1. The samples are made-up donations in dollars.
//!
//!     cargo run --example ks_l1

use anyhow::Result;
use vsim::stats::{ks_2samp, l1_density_pfg, l1_histogram, l1_paired, wasserstein1, KsMode, PFG_BINS};

fn main() -> Result<()> {
    // Simulated donations pile up at one typical answer (mode collapse); the human ones spread.
    let simulated = [1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 2.0, 1.0, 0.5, 1.0];
    let human = [0.0, 0.0, 0.1, 0.5, 1.0, 0.0, 2.0, 0.25, 1.5, 0.0];
    println!("simulated: {simulated:?}");
    println!("human:     {human:?}");

    let ks = ks_2samp(&simulated, &human, KsMode::Auto)?;
    println!(
        "KS: D = {:.3}, p = {:.4} ({:?} p-value, n1 = {}, n2 = {})",
        ks.statistic, ks.pvalue, ks.method_used, ks.n1, ks.n2
    );
    println!(
        "histogram L1 over {} bins of ${:.2} on [{}, {}]: {:.3} (0 = same shape, 2 = disjoint)",
        PFG_BINS.n,
        (PFG_BINS.hi - PFG_BINS.lo) / PFG_BINS.n as f64,
        PFG_BINS.lo,
        PFG_BINS.hi,
        l1_histogram(&simulated, &human, &PFG_BINS)?
    );
    println!(
        "density L1 (numpy.histogram(density=True) × bin width): {:.3}",
        l1_density_pfg(&simulated, &human)?
    );
    println!("paired L1 (mean |sim_i − human_i|, person by person): ${:.3}", l1_paired(&simulated, &human)?);
    println!("Wasserstein-1: ${:.3}", wasserstein1(&simulated, &human)?);

    // The same sample against itself: every distance is 0 and KS cannot reject.
    let same = ks_2samp(&human, &human, KsMode::Auto)?;
    println!("human vs itself: D = {:.3}, p = {:.3}", same.statistic, same.pvalue);
    Ok(())
}
