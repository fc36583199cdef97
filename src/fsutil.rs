//! The one way vsim writes files, and small helpers for files and their text.
//!
//! The rules every command that writes follows:
//! - it writes only into an empty folder or a folder of its own kind, recognised by its
//!   manifest (`claim_dir`);
//! - it never writes through a symbolic link, which could point out of its folder
//!   ([`write_atomic`], [`open_no_follow`]);
//! - a file is replaced whole, through a temporary file renamed over it ([`write_atomic`]),
//!   or appended by one writer that holds the folder's lock.
//!
//! A refused write is an [`std::io::Error`] carrying a [`Refusal`], so it reaches the user
//! with the path it concerns like any other file error; [`is_refusal`] tells it apart (bad
//! input, not a failure).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Why vsim refused to write somewhere.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The file is a symbolic link.
    #[error(
        "is a symbolic link; vsim never writes through a link (it could point out of the folder): \
         remove the link or use another folder"
    )]
    Link,
    /// The folder holds files, and no manifest of the kind of folder the command writes.
    #[error(
        "is not empty and is not {what} ({reason}); vsim writes only into an empty folder or \
         one it made itself: choose another folder"
    )]
    Foreign {
        /// What the command writes, e.g. `a vsim run folder`.
        what: &'static str,
        /// Why the folder is not of that kind.
        reason: String,
    },
    /// The path exists and is not a folder.
    #[error("exists and is not a folder")]
    NotAFolder,
}

impl Refusal {
    fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, self)
    }
}

/// Whether `error` (or the I/O error it is) is a [`Refusal`]: bad input (exit code 2), not a
/// failure while running. Meant for each link of an error's source chain.
pub fn is_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<Refusal>() {
        return true;
    }
    error
        .downcast_ref::<std::io::Error>()
        .and_then(|e| e.get_ref())
        .is_some_and(|inner| inner.is::<Refusal>())
}

/// Whether any link of `error`'s source chain is a [`Refusal`].
pub fn chain_has_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if is_refusal(e) {
            return true;
        }
        next = e.source();
    }
    false
}

/// A kind of folder a command writes, recognised by its manifest: a JSON object naming the
/// vsim version that wrote it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FolderKind {
    /// What it is, for messages: `a vsim run folder`.
    pub what: &'static str,
    /// Its manifest's file name.
    pub manifest: &'static str,
}

/// Files that do not make a folder anyone's: a lock left by a process killed before it wrote
/// its manifest.
const IGNORED_IN_EMPTY: &[&str] = &[".vsim.lock"];

impl FolderKind {
    /// Why `dir` is not of this kind, or `Ok` when its manifest says it is.
    fn check(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(self.manifest);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => return Err(format!("its {} is a link", self.manifest)),
            Ok(m) if !m.is_file() => return Err(format!("its {} is not a file", self.manifest)),
            Ok(_) => {}
            Err(_) => return Err(format!("no {}", self.manifest)),
        }
        // Manifests are small; a huge file is not one.
        let text = match std::fs::metadata(&path) {
            Ok(m) if m.len() > 64 * 1024 * 1024 => {
                return Err(format!("its {} is not vsim's", self.manifest))
            }
            _ => std::fs::read_to_string(&path).map_err(|e| format!("{} unreadable: {e}", self.manifest))?,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{} is not vsim's: {e}", self.manifest))?;
        let ours = value
            .as_object()
            .is_some_and(|o| o.contains_key("vsim_version") || o.contains_key("manifest_version"));
        if ours {
            Ok(())
        } else {
            Err(format!("its {} was not written by vsim", self.manifest))
        }
    }
}

/// Makes `dir` ready to be written as a folder of `kind`: creates it when missing; accepts it
/// when empty or when its manifest says it is of that kind; refuses anything else (a file, a
/// folder of someone else's files) with a [`Refusal`].
pub(crate) fn claim_dir(dir: &Path, kind: FolderKind) -> std::io::Result<()> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return std::fs::create_dir_all(dir),
        Err(e) => return Err(e),
        Ok(m) if !m.is_dir() => return Err(Refusal::NotAFolder.into_io()),
        Ok(_) => {}
    }
    let mut entries = std::fs::read_dir(dir)?;
    let empty = entries.all(|e| {
        e.is_ok_and(|e| IGNORED_IN_EMPTY.iter().any(|name| e.file_name() == std::ffi::OsStr::new(name)))
    });
    if empty {
        return Ok(());
    }
    kind.check(dir).map_err(|reason| Refusal::Foreign { what: kind.what, reason }.into_io())
}

/// Refuses a `path` that is a symbolic link (a missing path is fine).
pub fn refuse_link(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(Refusal::Link.into_io()),
        _ => Ok(()),
    }
}

/// Opens `path` with `options`, refusing a symbolic link at `path` (atomically where the
/// platform allows it: `O_NOFOLLOW`).
pub fn open_no_follow(options: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    refuse_link(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return Refusal::Link.into_io();
        }
        e
    })
}

/// Writes `bytes` to `path` so that a reader (or a crash) sees either the old file or the
/// new one, never a part of it: the bytes go to a temporary file in the same directory,
/// which is flushed to disk and then renamed over `path`; the directory is then synced so
/// that the rename itself survives a crash (where the platform allows it).
///
/// The directory must exist. The file gets the permissions an ordinary new file gets
/// (`0o666` less the umask on Unix), not the owner-only ones of a temporary file. A `path`
/// that is a symbolic link is refused ([`Refusal::Link`]), never replaced or followed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    refuse_link(path)?;
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

/// `text` with every control character escaped, for a terminal or a log: text that came
/// from a model or a server could otherwise set the window title, clear the screen, write
/// the clipboard (OSC 52) or hide what follows. Escaped as `\x1b` (C0 controls and DEL)
/// or `\u{9b}` (C1 controls, and the bidirectional overrides and isolates that reorder what
/// is shown); line feeds and tabs are kept, and so is everything else, unchanged.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    fn escaped(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(escaped) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !escaped(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
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
    fn escape_controls_escapes_what_a_terminal_obeys_and_keeps_the_rest() {
        // Window title (OSC 0), clipboard write (OSC 52), clear screen, a C1 CSI, a bidi
        // override, a carriage return that would overwrite the line.
        let hostile = "a\u{1b}]0;pwned\u{7}b\u{1b}]52;c;Zm9v\u{7}\u{1b}[2J\u{9b}31m\u{202e}x\ry\u{7f}";
        let shown = escape_controls(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert_eq!(shown, "a\\x1b]0;pwned\\x07b\\x1b]52;c;Zm9v\\x07\\x1b[2J\\u{9b}31m\\u{202e}x\\x0dy\\x7f");
        let plain = "Hello, wörld\n\tdonate $1.50 — 😀";
        assert!(matches!(escape_controls(plain), std::borrow::Cow::Borrowed(s) if s == plain));
    }

    #[test]
    fn a_folder_is_claimed_only_when_empty_or_of_the_kind_its_manifest_says() {
        let kind = FolderKind { what: "a test folder", manifest: "m.json" };
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new/deeper");
        claim_dir(&new, kind).unwrap();
        assert!(new.is_dir(), "a missing folder is created");
        claim_dir(&new, kind).unwrap();
        std::fs::write(new.join(".vsim.lock"), "1").unwrap();
        claim_dir(&new, kind).expect("a lock file alone leaves a folder empty");

        let foreign = dir.path().join("project");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("config.json"), "{}").unwrap();
        let e = claim_dir(&foreign, kind).unwrap_err();
        assert!(is_refusal(&e) && e.to_string().contains("not a test folder"), "{e}");
        std::fs::write(foreign.join("m.json"), r#"{"name": "x"}"#).unwrap();
        let e = claim_dir(&foreign, kind).unwrap_err();
        assert!(e.to_string().contains("not written by vsim"), "{e}");
        std::fs::write(foreign.join("m.json"), r#"{"vsim_version": "0.1.0"}"#).unwrap();
        claim_dir(&foreign, kind).unwrap();

        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = claim_dir(&file, kind).unwrap_err();
        assert!(is_refusal(&e) && e.to_string().contains("not a folder"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn nothing_is_written_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "precious").unwrap();
        let link = dir.path().join("run.log");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let e = write_atomic(&link, b"x").unwrap_err();
        assert!(is_refusal(&e) && e.to_string().contains("symbolic link"), "{e}");
        let e = open_no_follow(OpenOptions::new().append(true).create(true), &link).unwrap_err();
        assert!(is_refusal(&e), "{e}");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
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
