//! Downloading ConvoKit's published zip of PersuasionForGood into the user's data directory,
//! so the human reference data is one command away rather than a manual hunt.
//!
//! The zip is streamed to a temporary file next to the destination, unpacked into a
//! temporary directory there, checked by loading it, and only then renamed into place: an
//! interrupted or broken download never leaves a half-written corpus behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::convokit::{is_convokit_dir, CORPUS_NAME};
use super::persuasionforgood::PfgDataset;
use super::DataError;

/// Where ConvoKit publishes the corpus (the `persuasionforgood-corpus` entry of ConvoKit's
/// `download_config.json`, which its `convokit.download()` reads).
pub const PFG_CORPUS_URL: &str =
    "https://zissou.infosci.cornell.edu/convokit/datasets/persuasionforgood-corpus/persuasionforgood.zip";

/// What to do when the download cannot be made, in words shared by every network error.
const BY_HAND: &str = "if this machine is offline, download the zip by hand on another one, unzip \
    it and pass its directory as `--population pfg:DIR` / `--human pfg:DIR`";

/// Why a dataset could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no user data directory on this system; pass --dir DIR")]
    NoDataDir,
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The message carries the whole cause chain (e.g. "connection refused"), as reqwest's own
    /// message alone hides it; the error is kept for callers that inspect it.
    #[error("cannot download {url}: {}; {}", error_chain(.error), BY_HAND)]
    Request { url: String, error: reqwest::Error },
    #[error("cannot download {url}: the server answered HTTP {status}; {}", BY_HAND)]
    Status { url: String, status: u16 },
    #[error(
        "{} exists and is not a ConvoKit corpus; it is left untouched: choose another directory",
        path.display()
    )]
    DestinationInUse { path: PathBuf },
    #[error("{url} is not a readable zip archive: {source}")]
    Zip {
        url: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("the archive from {url} holds no ConvoKit corpus (no utterances.jsonl)")]
    NoCorpus { url: String },
    #[error("the archive from {url} unpacked, but does not load: {source}")]
    Invalid {
        url: String,
        #[source]
        source: Box<DataError>,
    },
}

/// `error` and its causes, joined.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The default home of the corpus: `<data dir>/vsim/datasets/persuasionforgood-corpus`.
pub fn default_pfg_dir() -> Result<PathBuf, FetchError> {
    dirs::data_dir().map(|d| d.join("vsim").join("datasets").join(CORPUS_NAME)).ok_or(FetchError::NoDataDir)
}

/// Downloads the ConvoKit corpus zip at `url`, unpacks it and moves it to `dest` (replacing
/// what was there only once the new corpus loads). Shows a progress bar on stderr when
/// `progress` is set. Returns the loaded dataset.
pub async fn fetch_convokit_corpus(url: &str, dest: &Path, progress: bool) -> Result<PfgDataset, FetchError> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    check_replaceable(dest)?;
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let mut zip_file = tempfile::Builder::new()
        .prefix(".vsim-download-")
        .suffix(".zip")
        .tempfile_in(&parent)
        .map_err(io(&parent))?;
    download(url, zip_file.as_file_mut(), progress).await?;

    let (url_owned, dest_owned) = (url.to_string(), dest.to_path_buf());
    tokio::task::spawn_blocking(move || unpack_and_install(&url_owned, zip_file.path(), &parent, &dest_owned))
        .await
        .map_err(|e| FetchError::Io { path: dest.to_path_buf(), source: std::io::Error::other(e) })?
}

async fn download(url: &str, out: &mut std::fs::File, progress: bool) -> Result<(), FetchError> {
    let request =
        |error: reqwest::Error| FetchError::Request { url: url.to_string(), error: error.without_url() };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .user_agent(concat!("vsim/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(request)?;
    let mut response = client.get(url).send().await.map_err(request)?;
    if !response.status().is_success() {
        return Err(FetchError::Status { url: url.to_string(), status: response.status().as_u16() });
    }
    let bar = progress_bar(response.content_length(), progress);
    while let Some(chunk) = response.chunk().await.map_err(request)? {
        out.write_all(&chunk)
            .map_err(|source| FetchError::Io { path: PathBuf::from("(download)"), source })?;
        bar.inc(chunk.len() as u64);
    }
    out.flush().map_err(|source| FetchError::Io { path: PathBuf::from("(download)"), source })?;
    bar.finish_and_clear();
    Ok(())
}

fn progress_bar(len: Option<u64>, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            indicatif::ProgressBar::new(n),
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        ),
        None => (indicatif::ProgressBar::new_spinner(), "{msg} {spinner} {bytes} ({bytes_per_sec})"),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("downloading {CORPUS_NAME}"));
    bar
}

fn unpack_and_install(
    url: &str,
    zip_path: &Path,
    parent: &Path,
    dest: &Path,
) -> Result<PfgDataset, FetchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    let zip_err = |source| FetchError::Zip { url: url.to_string(), source };
    let file = std::fs::File::open(zip_path).map_err(io(zip_path))?;
    let mut archive = zip::ZipArchive::new(file).map_err(zip_err)?;
    let staging = tempfile::Builder::new().prefix(".vsim-unpack-").tempdir_in(parent).map_err(io(parent))?;
    archive.extract(staging.path()).map_err(zip_err)?;

    let root = corpus_root(staging.path()).ok_or_else(|| FetchError::NoCorpus { url: url.to_string() })?;
    let data = PfgDataset::load_convokit(&root)
        .map_err(|source| FetchError::Invalid { url: url.to_string(), source: Box::new(source) })?;

    // Move any previous corpus aside first, so that a failed rename leaves it in place.
    check_replaceable(dest)?;
    let backup = parent.join(format!(".vsim-old-{}-{}", CORPUS_NAME, std::process::id()));
    let had_old = dest.exists();
    if had_old {
        std::fs::rename(dest, &backup).map_err(io(dest))?;
    }
    if let Err(source) = std::fs::rename(&root, dest) {
        if had_old {
            let _ = std::fs::rename(&backup, dest);
        }
        return Err(FetchError::Io { path: dest.to_path_buf(), source });
    }
    if had_old {
        let _ = std::fs::remove_dir_all(&backup);
    }
    Ok(data)
}

/// Only an absent path, an empty directory or an earlier corpus may be replaced: never a
/// directory of other files that `--dir` happened to name.
fn check_replaceable(dest: &Path) -> Result<(), FetchError> {
    let empty_dir = || std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_none());
    if !dest.exists() || is_convokit_dir(dest) || empty_dir() {
        Ok(())
    } else {
        Err(FetchError::DestinationInUse { path: dest.to_path_buf() })
    }
}

/// The unpacked corpus: the archive's top level, or its one folder holding `utterances.jsonl`
/// (skipping macOS `__MACOSX` folders).
fn corpus_root(dir: &Path) -> Option<PathBuf> {
    if is_convokit_dir(dir) {
        return Some(dir.to_path_buf());
    }
    let preferred = dir.join(CORPUS_NAME);
    if is_convokit_dir(&preferred) {
        return Some(preferred);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n != "__MACOSX") && is_convokit_dir(p))
        .collect();
    found.sort();
    found.into_iter().next()
}
