//! Small helpers for files and their text: whole-file atomic writes, and the line and
//! column of a byte offset (for errors that point into a configuration file).

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` so that a reader (or a crash) sees either the old file or the
/// new one, never a part of it: the bytes go to a temporary file in the same directory,
/// which is flushed to disk and then renamed over `path`; the directory is then synced so
/// that the rename itself survives a crash (where the platform allows it).
///
/// The directory must exist. The file gets the permissions an ordinary new file gets
/// (`0o666` less the umask on Unix), not the owner-only ones of a temporary file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.as_file_mut().write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Syncs a directory's entries to disk. Best effort: some file systems refuse to sync a
/// directory, and the file itself is already on disk by then.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// The 1-based line and column (counted in characters) of byte `offset` in `text`. An
/// offset past the end is the end; one inside a character is that character's start.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters_from_one() {
        let text = "a = 1\nbé = 2\n\nx";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (1, 5));
        assert_eq!(line_col(text, 5), (1, 6), "the newline ends its line");
        assert_eq!(line_col(text, 6), (2, 1));
        // 'é' is two bytes: the '=' after "bé " is the 4th character of line 2.
        assert_eq!(line_col(text, 10), (2, 4));
        // Inside 'é': its start.
        assert_eq!(line_col(text, 8), (2, 2));
        assert_eq!(line_col(text, 14), (3, 1));
        assert_eq!(line_col(text, 15), (4, 1));
        assert_eq!(line_col(text, 1000), (4, 2), "past the end: the end");
        assert_eq!(line_col("", 3), (1, 1));
    }

    #[test]
    fn write_atomic_replaces_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_atomic(&path, b"first, and longer").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // Nothing is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["out.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_gives_ordinary_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"x").unwrap();
        std::fs::write(dir.path().join("g"), b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&dir.path().join("g")));
    }

    #[test]
    fn write_atomic_fails_without_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(&dir.path().join("missing/f"), b"x").is_err());
    }
}
