//! Numbers as tables and labels print them, so that evaluation labels and report cells
//! agree.

/// A number for tables: three decimals, or scientific notation for tiny p-values.
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    if x != 0.0 && x.abs() < 0.001 {
        return format!("{x:.2e}");
    }
    format!("{x:.3}")
}

/// A bin edge or similar parameter: no trailing zeros (`0`, `2`, `0.25`).
pub fn short(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
