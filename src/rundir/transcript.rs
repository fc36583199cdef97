//! The run's transcript file: each dialogue's events appended whole and flushed, so neither a
//! crash nor a failed write leaves a torn line; reading it back tells which dialogues are
//! finished.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::dialogue::Event;

/// Transcript I/O failures.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    /// The transcript could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The transcript file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a transcript event.
    #[error("{}:{line}: not a transcript event: {reason}", path.display())]
    BadLine {
        /// The transcript file.
        path: PathBuf,
        /// The line, 1-based.
        line: usize,
        /// The parser's message.
        reason: String,
    },
}

/// Appends dialogues to `transcripts.jsonl`.
pub struct TranscriptWriter {
    path: PathBuf,
    file: File,
}

impl TranscriptWriter {
    /// Opens for appending; a torn last line (from a crash mid-write) is cut off first.
    pub fn open(path: &Path) -> Result<Self, TranscriptError> {
        let io = |source| TranscriptError::Io { path: path.to_path_buf(), source };
        let mut file =
            crate::fsutil::open_no_follow(OpenOptions::new().create(true).read(true).append(true), path)
                .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let keep = whole_lines_len(&mut file, len).map_err(io)?;
        if keep < len {
            file.set_len(keep).map_err(io)?;
            file.seek(SeekFrom::End(0)).map_err(io)?;
        }
        Ok(Self { path: path.to_path_buf(), file })
    }

    /// Writes all events of one dialogue in a single write, then flushes to disk.
    pub fn append(&mut self, events: &[Event]) -> Result<(), TranscriptError> {
        self.append_many(std::iter::once(events))
    }

    /// Writes several whole dialogues in a single write and flushes to disk once: when many
    /// dialogues finish together, one `fsync` instead of one each keeps the disk from
    /// limiting throughput.
    pub(crate) fn append_many<'a>(
        &mut self,
        dialogues: impl IntoIterator<Item = &'a [Event]>,
    ) -> Result<(), TranscriptError> {
        let mut buf = Vec::new();
        for e in dialogues.into_iter().flatten() {
            serde_json::to_writer(&mut buf, e)
                .map_err(|e| TranscriptError::Io { path: self.path.clone(), source: e.into() })?;
            buf.push(b'\n');
        }
        if buf.is_empty() {
            return Ok(());
        }
        let io = |source| TranscriptError::Io { path: self.path.clone(), source };
        let before = self.file.metadata().map_err(io)?.len();
        let written =
            self.file.write_all(&buf).and_then(|()| self.file.flush()).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // A write that failed part-way (disk full, file size limit) must not leave a torn
            // line: cut the file back to the last whole dialogue before reporting it.
            let _ = self.file.set_len(before);
            let _ = self.file.sync_data();
            return Err(io(e));
        }
        Ok(())
    }
}

/// The length of the file's whole lines: `len` when it ends with a newline, else up to its
/// last newline. Reads only the tail, backwards in blocks, so a large transcript is never
/// read whole to open it.
fn whole_lines_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    use std::io::Read;
    const BLOCK: u64 = 64 * 1024;
    let mut end = len;
    let mut buf = vec![0u8; BLOCK as usize];
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if end == len && chunk.last() == Some(&b'\n') {
            return Ok(len);
        }
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Reads every event, grouped by dialogue id in file order. A torn last line is ignored.
pub fn read_events(path: &Path) -> Result<BTreeMap<String, Vec<Event>>, TranscriptError> {
    let mut out: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for_each_event(path, |e| out.entry(e.dialogue().to_string()).or_default().push(e))?;
    Ok(out)
}

/// Calls `f` with every event in file order, reading one line at a time, so that a large
/// transcript is never held in memory whole. A torn last line is ignored.
pub(crate) fn for_each_event(path: &Path, f: impl FnMut(Event)) -> Result<(), TranscriptError> {
    read_lines(path, false, f).map(|_| ())
}

/// [`for_each_event`] for readers of each dialogue's frame (`begin`, `outcome`, `end`,
/// `error`): a `turn` line, which holds a whole reply and its candidates and is most of a
/// transcript's bytes, is only checked to be a JSON object tagged `turn`, not parsed into an
/// event. With a thousand dialogues, parsing every turn back was several microseconds of
/// CPU per model call at the end of a run.
pub(crate) fn for_each_frame_event(path: &Path, f: impl FnMut(Event)) -> Result<(), TranscriptError> {
    read_lines(path, true, f).map(|_| ())
}

/// [`read_events`], also telling whether a last line that is not a whole event (a write cut
/// short) was left out.
pub(crate) fn read_events_noting_torn(
    path: &Path,
) -> Result<(BTreeMap<String, Vec<Event>>, bool), TranscriptError> {
    let mut out: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    let torn =
        for_each_event_noting_torn(path, |e| out.entry(e.dialogue().to_string()).or_default().push(e))?;
    Ok((out, torn))
}

/// [`for_each_event`], returning whether a torn last line was left out.
pub(crate) fn for_each_event_noting_torn(path: &Path, f: impl FnMut(Event)) -> Result<bool, TranscriptError> {
    read_lines(path, false, f)
}

/// An event line's tag alone; the rest of the line is checked as JSON and skipped.
#[derive(serde::Deserialize)]
struct Tag<'a> {
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
}

/// Reads the transcript line by line, calling `f` with each event (with `skip_turns`, each
/// but `turn` events); returns whether a torn last line was left out.
fn read_lines(path: &Path, skip_turns: bool, mut f: impl FnMut(Event)) -> Result<bool, TranscriptError> {
    let io = |source| TranscriptError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io)?;
    let mut lines = BufReader::new(file).lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        if skip_turns {
            match serde_json::from_str::<Tag>(&line) {
                Ok(tag) if tag.event == "turn" => continue,
                Ok(_) => {}
                // Torn or not an event: the full parse below says which.
                Err(_) => {}
            }
        }
        match serde_json::from_str::<Event>(&line) {
            Ok(e) => f(e),
            Err(_) if lines.peek().is_none() => return Ok(true),
            Err(e) => {
                return Err(TranscriptError::BadLine {
                    path: path.to_path_buf(),
                    line: i + 1,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(false)
}

/// Ids of the dialogues whose latest attempt ended normally, read without holding the
/// transcript in memory.
pub(crate) fn completed_dialogue_ids(
    path: &Path,
) -> Result<std::collections::HashSet<String>, TranscriptError> {
    let mut ended: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    for_each_frame_event(path, |e| match e {
        Event::Begin(b) => {
            ended.insert(b.dialogue, false);
        }
        Event::End(end) => {
            if let Some(done) = ended.get_mut(&end.dialogue) {
                *done = true;
            }
        }
        _ => {}
    })?;
    Ok(ended.into_iter().filter(|(_, done)| *done).map(|(id, _)| id).collect())
}

/// The latest complete attempt of a dialogue (its events from the last `begin` on), if it
/// ended normally.
pub(crate) fn completed_attempt(events: &[Event]) -> Option<&[Event]> {
    let start = events.iter().rposition(|e| matches!(e, Event::Begin(_)))?;
    let attempt = &events[start..];
    attempt.iter().any(|e| matches!(e, Event::End(_))).then_some(attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_cut_back_to_the_last_whole_line_however_long() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        // A whole line, then a torn one longer than a read block.
        let whole = "{\"a\":1}\n";
        let torn = "x".repeat(200_000);
        for (text, keep) in [
            (format!("{whole}{torn}"), whole.len()),
            (whole.to_string(), whole.len()),
            (torn.clone(), 0),
            (String::new(), 0),
        ] {
            std::fs::write(&path, &text).unwrap();
            drop(TranscriptWriter::open(&path).unwrap());
            assert_eq!(std::fs::metadata(&path).unwrap().len(), keep as u64);
        }
    }

    #[test]
    fn frame_readers_skip_turn_lines_unparsed_and_still_refuse_other_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let error = r#"{"event": "error", "dialogue": "d-0", "message": "boom"}"#;
        // A turn line that is no whole turn event: full readers refuse it, frame readers
        // do not look inside.
        let turn = r#"{"event":"turn","dialogue":"d-0","not":"a turn"}"#;
        std::fs::write(&path, format!("{turn}\n{error}\n")).unwrap();
        let mut seen = Vec::new();
        for_each_frame_event(&path, |e| seen.push(e.dialogue().to_string())).unwrap();
        assert_eq!(seen, ["d-0"]);
        assert!(matches!(for_each_event(&path, |_| {}), Err(TranscriptError::BadLine { line: 1, .. })));
        // Any other line must still be a whole event.
        std::fs::write(&path, format!("{error}\n{{\"event\":\"end\"}}\n{error}\n")).unwrap();
        assert!(matches!(for_each_frame_event(&path, |_| {}), Err(TranscriptError::BadLine { line: 2, .. })));
    }
}
