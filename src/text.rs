//! Text helpers every layer may use: cutting outside text to a bounded excerpt.

/// At most `max` characters of `body`, on a char boundary, with an ellipsis when cut.
pub(crate) fn excerpt(body: &str, max: usize) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &trimmed[..i]),
        None => trimmed.to_string(),
    }
}
