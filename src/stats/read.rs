//! Reading a sample of numbers from a plain text file.

use std::path::Path;

use super::StatsError;

/// Reads one number per line from `path`.
///
/// Leading and trailing whitespace is ignored, as is everything from a `#` to the end of
/// the line; lines left empty are skipped. Every other line must be a finite number in
/// Rust's float syntax (`2`, `0.5`, `-1e3`). Errors name the file, and for a bad line
/// also its 1-based number and text.
pub fn read_numbers(path: &Path) -> Result<Vec<f64>, StatsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| StatsError::Read { path: path.to_path_buf(), source })?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let content = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
        if content.is_empty() {
            continue;
        }
        match content.parse::<f64>() {
            Ok(v) if v.is_finite() => out.push(v),
            _ => {
                return Err(StatsError::Parse {
                    path: path.to_path_buf(),
                    line: i + 1,
                    text: content.to_string(),
                })
            }
        }
    }
    Ok(out)
}
