//! Where the response cache keeps its replies: append-only pack files holding one JSON
//! entry per line, and an index in memory from key to line.
//!
//! A file per reply cost the file system an inode, a temporary file and a rename for every
//! model call: over 200 µs of CPU per call with 1,024 dialogues in flight, more than twice the
//! rest of vsim's work. Here each process appends to a pack of its own
//! (`packs/{millis}-{pid}-{n}.jsonl`, created exclusively), so writers never interleave,
//! and every pack's lines are indexed the first time a cache folder is used in a process;
//! of two lines for one key the later pack's (then the later line) wins. Lines are not
//! synced: after a crash a pack may end in a torn line, which is skipped (a miss). Replies
//! that another process stores after this one has read the packs are not seen (misses
//! too). All wrappers over one folder in a process share one index, so what one stores the
//! others read.
//!
//! Reads and appends run on the calling task: they go to the page cache and take a few
//! microseconds, which a hop to a blocking thread would cost again. Only the first reading
//! of the packs, which may be large, runs on a blocking thread.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use tokio::sync::OnceCell;

/// The folder under the cache folder that holds the packs.
const PACKS: &str = "packs";
/// A line longer than this is not one of ours (a reply is bounded by the backends' body
/// limits well below it); it is skipped rather than read into memory.
const MAX_LINE: u64 = 64 * 1024 * 1024;
/// How an entry's line begins: `{"key":"` and 64 lowercase hex digits, then `"`.
const KEY_PREFIX: &[u8] = b"{\"key\":\"";
const PREFIX_LEN: usize = KEY_PREFIX.len() + 64 + 1;

/// A key as the index holds it: the SHA-256 the hex key spells.
type KeyBytes = [u8; 32];

/// Where an entry's line is.
#[derive(Debug, Clone, Copy)]
struct Place {
    pack: usize,
    offset: u64,
    len: u64,
}

/// This process's pack, which it appends to. Only this one is kept open: the others are
/// opened for each read, so that a folder of thousands of packs (one per run) holds no
/// file descriptors.
#[derive(Debug)]
struct Writer {
    /// Its number in [`Index::packs`].
    pack: usize,
    file: File,
    /// Bytes written to it.
    len: u64,
}

#[derive(Debug, Default)]
struct Index {
    places: HashMap<KeyBytes, Place>,
    /// Every pack's path, oldest first; a [`Place`] names one by its number here.
    packs: Vec<PathBuf>,
    /// This process's pack, once it has stored a reply.
    writer: Option<Writer>,
    /// Whether the folder holds replies of the earlier file-per-reply layout.
    legacy: bool,
}

/// The packs of one cache folder, shared by every wrapper over it in this process.
#[derive(Debug)]
pub(super) struct Packs {
    dir: PathBuf,
    index: OnceCell<Mutex<Index>>,
}

/// The folders open in this process; entries go when their last wrapper is dropped, so a
/// wrapper made afterwards reads the packs again.
static OPEN: LazyLock<Mutex<HashMap<PathBuf, Weak<Packs>>>> = LazyLock::new(Default::default);

/// The packs of `dir`, shared with every other wrapper over `dir` in this process.
pub(super) fn open(dir: &Path) -> Arc<Packs> {
    let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    open.retain(|_, packs| packs.strong_count() > 0);
    if let Some(packs) = open.get(dir).and_then(Weak::upgrade) {
        return packs;
    }
    let packs = Arc::new(Packs { dir: dir.to_path_buf(), index: OnceCell::new() });
    open.insert(dir.to_path_buf(), Arc::downgrade(&packs));
    packs
}

/// What a lookup found.
#[derive(Debug)]
pub(super) enum Found {
    /// The entry's line.
    Line(Vec<u8>),
    /// No pack has the key, and the folder holds no replies of the earlier layout.
    Missing,
    /// No pack has the key, but the earlier layout's file for it may exist.
    TryLegacy,
}

impl Packs {
    async fn index(&self) -> &Mutex<Index> {
        self.index
            .get_or_init(|| async {
                let dir = self.dir.clone();
                let index = tokio::task::spawn_blocking(move || read_index(&dir)).await.unwrap_or_default();
                Mutex::new(index)
            })
            .await
    }

    /// The stored line for `key` (64 lowercase hex digits).
    pub(super) async fn get(&self, key: &str) -> std::io::Result<Found> {
        let Some(k) = key_bytes(key.as_bytes()) else { return Ok(Found::Missing) };
        let mut index = self.index().await.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(place) = index.places.get(&k).copied() else {
            return Ok(if index.legacy { Found::TryLegacy } else { Found::Missing });
        };
        let mut opened;
        let file = match &mut index.writer {
            Some(w) if w.pack == place.pack => &mut w.file,
            _ => {
                opened =
                    crate::fsutil::open_no_follow(OpenOptions::new().read(true), &index.packs[place.pack])?;
                &mut opened
            }
        };
        file.seek(SeekFrom::Start(place.offset))?;
        // `len` is bounded by MAX_LINE when the index is read.
        let mut line = vec![0; place.len as usize];
        file.read_exact(&mut line)?;
        Ok(Found::Line(line))
    }

    /// Appends `line` (one JSON entry whose key is `key`, without a newline) to this
    /// process's pack and indexes it.
    pub(super) async fn put(&self, key: &str, line: &[u8]) -> std::io::Result<()> {
        let Some(k) = key_bytes(key.as_bytes()) else {
            return Err(std::io::Error::other(format!("not a cache key: {key:?}")));
        };
        let mut guard = self.index().await.lock().unwrap_or_else(PoisonError::into_inner);
        let index = &mut *guard;
        let writer = match index.writer.take() {
            Some(writer) => index.writer.insert(writer),
            None => {
                let (path, file) = create_pack(&self.dir)?;
                index.packs.push(path);
                index.writer.insert(Writer { pack: index.packs.len() - 1, file, len: 0 })
            }
        };
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        if let Err(e) = writer.file.write_all(&bytes) {
            // A partly written line would run into the next one: start a new pack.
            index.writer = None;
            return Err(e);
        }
        let place = Place { pack: writer.pack, offset: writer.len, len: line.len() as u64 };
        writer.len += bytes.len() as u64;
        index.places.insert(k, place);
        Ok(())
    }
}

/// The 32 bytes that `hex` (64 hex digits) spells.
fn key_bytes(hex: &[u8]) -> Option<KeyBytes> {
    let mut out = [0; 32];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

/// Creates this process's pack: a new file that no other process can have opened.
fn create_pack(dir: &Path) -> std::io::Result<(PathBuf, File)> {
    let packs = dir.join(PACKS);
    std::fs::create_dir_all(&packs)?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let pid = std::process::id();
    for n in 0.. {
        let path = packs.join(format!("{millis:013}-{pid}-{n}.jsonl"));
        match OpenOptions::new().read(true).append(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

/// Every pack's lines under `dir`, oldest pack first so that later ones win.
fn read_index(dir: &Path) -> Index {
    let mut index = Index { legacy: has_legacy_replies(dir), ..Index::default() };
    let Ok(entries) = std::fs::read_dir(dir.join(PACKS)) else { return index };
    let mut paths: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "jsonl")).collect();
    paths.sort();
    for path in paths {
        let file = match crate::fsutil::open_no_follow(OpenOptions::new().read(true), &path) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read a response cache pack; its replies are misses");
                continue;
            }
        };
        let pack = index.packs.len();
        let places = &mut index.places;
        let scanned = scan_lines(&file, |offset, len, prefix| {
            if let Some(k) = prefix.strip_prefix(KEY_PREFIX).and_then(|rest| rest.get(..65)) {
                if k[64] == b'"' {
                    if let Some(k) = key_bytes(&k[..64]) {
                        places.insert(k, Place { pack, offset, len });
                    }
                }
            }
        });
        if let Err(e) = scanned {
            // The lines read before the error are whole, and stay found.
            tracing::warn!(path = %path.display(), error = %e, "cannot read all of a response cache pack; the rest of its replies are misses");
        }
        index.packs.push(path);
    }
    index
}

/// Calls `line(offset, len, prefix)` for every whole line of `file` no longer than
/// [`MAX_LINE`], with the line's first [`PREFIX_LEN`] bytes; a torn last line is left
/// out. Memory stays bounded whatever the file holds.
fn scan_lines(file: &File, mut line: impl FnMut(u64, u64, &[u8])) -> std::io::Result<()> {
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
    let mut prefix = Vec::with_capacity(PREFIX_LEN);
    let (mut start, mut pos) = (0u64, 0u64);
    loop {
        let buf = std::io::BufRead::fill_buf(&mut reader)?;
        if buf.is_empty() {
            return Ok(());
        }
        let mut consumed = 0;
        while consumed < buf.len() {
            let rest = &buf[consumed..];
            let (take, ends) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (rest.len(), false),
            };
            let room = PREFIX_LEN.saturating_sub(prefix.len()).min(take);
            prefix.extend_from_slice(&rest[..room]);
            consumed += take;
            pos += take as u64;
            if ends {
                let len = pos - start;
                if len <= MAX_LINE {
                    line(start, len, &prefix);
                }
                consumed += 1;
                pos += 1;
                start = pos;
                prefix.clear();
            }
        }
        let n = buf.len();
        std::io::BufRead::consume(&mut reader, n);
    }
}

/// Whether `dir` holds a folder of the earlier layout (`{key[0..2]}/{key}.json`).
fn has_legacy_replies(dir: &Path) -> bool {
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()) && e.path().is_dir()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn line(k: &str, content: &str) -> Vec<u8> {
        format!("{{\"key\":\"{k}\",\"backend\":\"b\",\"response\":{{\"content\":\"{content}\"}}}}")
            .into_bytes()
    }

    #[tokio::test]
    async fn lines_are_found_in_this_process_and_by_a_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let packs = open(dir.path());
        assert!(matches!(packs.get(&key(1)).await.unwrap(), Found::Missing));
        packs.put(&key(1), &line(&key(1), "one")).await.unwrap();
        packs.put(&key(2), &line(&key(2), "two")).await.unwrap();
        packs.put(&key(1), &line(&key(1), "uno")).await.unwrap();
        assert!(Arc::ptr_eq(&packs, &open(dir.path())), "one index per folder in a process");
        let Found::Line(l) = packs.get(&key(1)).await.unwrap() else { panic!("missing") };
        assert_eq!(l, line(&key(1), "uno"));
        drop(packs);

        let later = open(dir.path());
        let Found::Line(l) = later.get(&key(1)).await.unwrap() else { panic!("missing") };
        assert_eq!(l, line(&key(1), "uno"), "the later line wins");
        let Found::Line(l) = later.get(&key(2)).await.unwrap() else { panic!("missing") };
        assert_eq!(l, line(&key(2), "two"));
        // The later process appends to a pack of its own.
        later.put(&key(3), &line(&key(3), "three")).await.unwrap();
        assert_eq!(std::fs::read_dir(dir.path().join(PACKS)).unwrap().count(), 2);
    }

    #[tokio::test]
    async fn torn_and_foreign_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(PACKS)).unwrap();
        let mut text = Vec::new();
        text.extend_from_slice(b"not json at all\n");
        text.extend_from_slice(&line(&key(1), "kept"));
        text.push(b'\n');
        text.extend_from_slice(format!("{{\"key\":\"{}\"}}\n", "Z".repeat(64)).as_bytes());
        text.extend_from_slice(&line(&key(2), "torn")[..30]);
        std::fs::write(dir.path().join(PACKS).join("0-1-0.jsonl"), &text).unwrap();
        let packs = open(dir.path());
        assert!(matches!(packs.get(&key(1)).await.unwrap(), Found::Line(_)));
        assert!(matches!(packs.get(&key(2)).await.unwrap(), Found::Missing));
    }

    #[test]
    fn lines_are_scanned_with_their_places_across_buffer_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let long = "x".repeat(100_000);
        std::fs::write(&path, format!("ab\n{long}\n\nlast-torn")).unwrap();
        let mut seen = Vec::new();
        scan_lines(&File::open(&path).unwrap(), |o, l, p| seen.push((o, l, p.to_vec()))).unwrap();
        assert_eq!(seen[0], (0, 2, b"ab".to_vec()));
        assert_eq!((seen[1].0, seen[1].1, seen[1].2.len()), (3, 100_000, PREFIX_LEN));
        assert_eq!(seen[2], (100_004, 0, Vec::new()));
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn legacy_folders_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_legacy_replies(dir.path()));
        std::fs::create_dir_all(dir.path().join(PACKS)).unwrap();
        assert!(!has_legacy_replies(dir.path()));
        std::fs::create_dir_all(dir.path().join("a3")).unwrap();
        assert!(has_legacy_replies(dir.path()));
    }
}
