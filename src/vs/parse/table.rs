//! Reading candidates from a markdown table with a header separator row.

use super::candidates::is_placeholder;
use super::items::{ListFound, RawItem, Stated};
use super::prose::{clean_text, number_stated};
use super::Repair;

/// A table row's cells, and whether the row ended with a `|`.
fn table_cells(line: &str) -> (Vec<String>, bool) {
    let t = line.trim();
    let t = t.strip_prefix('|').unwrap_or(t);
    let closed = t.ends_with('|') && !t.ends_with("\\|");
    let t = if closed { &t[..t.len() - 1] } else { t };
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cell).trim().to_string()),
            c => cell.push(c),
        }
    }
    cells.push(cell.trim().to_string());
    (cells, closed)
}

fn is_separator_row(line: &str) -> bool {
    let t = line.trim();
    if !t.contains('-') || !(t.contains('|') || t.starts_with(['-', ':'])) {
        return false;
    }
    let (cells, _) = table_cells(t);
    !cells.is_empty()
        && cells.iter().all(|c| {
            let c = c.trim().trim_start_matches(':').trim_end_matches(':');
            !c.is_empty() && c.chars().all(|ch| ch == '-')
        })
}

/// Cell `j` of a row, empty when the row is short.
fn cell(row: &(Vec<String>, bool), j: usize) -> &str {
    row.0.get(j).map_or("", String::as_str)
}

/// A header cell lower-cased, without emphasis.
fn header_name(h: &str) -> String {
    h.trim().trim_matches(['*', '_', '`']).trim().to_ascii_lowercase()
}

fn is_prob_header(h: &str) -> bool {
    h == "p"
        || h == "pr"
        || ["prob", "likelihood", "confidence", "chance", "weight", "score", "percent", "%"]
            .iter()
            .any(|w| h.contains(w))
}

fn is_text_header(h: &str) -> bool {
    [
        "response",
        "text",
        "reply",
        "candidate",
        "content",
        "answer",
        "message",
        "utterance",
        "output",
        "option",
        "statement",
        "what",
    ]
    .iter()
    .any(|w| h.contains(w))
}

/// Candidates in a markdown table: the first table (a header row, a `|---|` row, data rows)
/// with a text column (named like `response` or `text`, else the widest one that is not a
/// number) and a probability column (named like `probability`, else the one whose every
/// cell is a decimal or a percentage). A last row cut off keeps its text when the text cell
/// was complete.
pub(super) fn table_list(body: &str) -> Option<ListFound> {
    if !body.contains('|') {
        return None;
    }
    let lines: Vec<&str> = body.lines().collect();
    let ends_cut = !body.ends_with(['\n', '\r']);
    for i in 1..lines.len() {
        if !is_separator_row(lines[i]) || !lines[i - 1].contains('|') {
            continue;
        }
        let (header, header_closed) = table_cells(lines[i - 1]);
        if header.len() < 2 {
            continue;
        }
        let rows: Vec<(Vec<String>, bool)> = lines[i + 1..]
            .iter()
            .take_while(|l| l.contains('|') && !l.trim().is_empty())
            .map(|l| table_cells(l))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let last_is_end = i + rows.len() == lines.len() - 1 && ends_cut;
        let names: Vec<String> = header.iter().map(|h| header_name(h)).collect();
        let numeric_col = |j: usize| {
            let mut any_clear = false;
            let all = rows.iter().filter(|r| !cell(r, j).is_empty()).all(|r| {
                let c = cell(r, j).trim_matches(['*', '_']);
                any_clear |= c.contains(['.', '%']);
                number_stated(c).is_value() && c.len() <= 24
            });
            all && any_clear
        };
        let prob_col = names
            .iter()
            .position(|n| is_prob_header(n))
            .or_else(|| (0..header.len()).find(|&j| numeric_col(j)));
        let text_col =
            names.iter().enumerate().position(|(j, n)| Some(j) != prob_col && is_text_header(n)).or_else(
                || {
                    (0..header.len())
                        .filter(|&j| {
                            Some(j) != prob_col && !rows.iter().all(|r| number_stated(cell(r, j)).is_value())
                        })
                        .max_by_key(|&j| rows.iter().map(|r| cell(r, j).len()).sum::<usize>())
                },
            );
        let Some(text_col) = text_col else { continue };
        let mut repairs = vec![Repair::MarkdownTable];
        let mut items = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            let (cells, closed) = row;
            let partial = r + 1 == rows.len()
                && last_is_end
                && ((header_closed && !closed) || cells.len() < header.len());
            // In a cut row only the cells before the last are complete.
            let complete = |j: usize| !partial || j + 1 < cells.len();
            if !complete(text_col) {
                repairs.push(Repair::CutOff { dropped: true });
                continue;
            }
            let mut item_repairs = Vec::new();
            let text = clean_text(cell(row, text_col), false, &mut item_repairs);
            if text.is_empty() || is_placeholder(&text) {
                continue;
            }
            let stated = match prob_col {
                Some(j) if complete(j) => number_stated(cell(row, j).trim_matches(['*', '_'])),
                _ => Stated::Missing,
            };
            if partial {
                repairs.push(Repair::CutOff { dropped: false });
            }
            items.push(RawItem { position: items.len(), text, stated, repairs: item_repairs });
        }
        if !items.is_empty() {
            return Some(ListFound { items, repairs, reasoning: None });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_and_separators() {
        assert_eq!(table_cells("| a | b \\| c |"), (vec!["a".to_string(), "b | c".to_string()], true));
        assert_eq!(table_cells("a | b"), (vec!["a".to_string(), "b".to_string()], false));
        assert!(is_separator_row("|---|:---:|"));
        assert!(is_separator_row("--- | ---"));
        assert!(!is_separator_row("| - | text |"));
        assert!(!is_separator_row("- a bullet"));
    }
}
