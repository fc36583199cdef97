//! Downloading ConvoKit's published zip of PersuasionForGood into the user's data directory,
//! so the human reference data is one command away rather than a manual hunt.
//!
//! The zip is streamed to a temporary file next to the destination, unpacked into a
//! temporary directory there, checked by loading it, and only then renamed into place: an
//! interrupted or broken download never leaves a half-written corpus behind. Download
//! progress goes to a [`Progress`] observer; nothing is printed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::progress::Progress;

use super::convokit::{is_convokit_dir, CORPUS_NAME};
use super::persuasionforgood::PfgDataset;
use super::DataError;

/// Where ConvoKit publishes the corpus (the `persuasionforgood-corpus` entry of ConvoKit's
/// `download_config.json`, which its `convokit.download()` reads).
pub const PFG_CORPUS_URL: &str =
    "https://zissou.infosci.cornell.edu/convokit/datasets/persuasionforgood-corpus/persuasionforgood.zip";

/// What to do when PersuasionForGood cannot be downloaded.
pub const PFG_BY_HAND: &str = "if this machine is offline, download the zip by hand on another one, unzip \
    it and pass its directory as `--population pfg:DIR` / `--human pfg:DIR`";

/// What to do when OpinionQA's wave 26 cannot be downloaded.
pub const OPINIONQA_BY_HAND: &str = "if this machine is offline, download the wave's seven files \
    (info.csv and the six *_data.json listed by `vsim data fetch --help`) by hand on another one into \
    one directory, and pass it as `--population opinionqa:DIR` or `opinionqa = \"DIR\"` in a survey file";

/// Why a dataset could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The platform has no user data directory and none was given.
    #[error("no user data directory on this system; give the folder to write to")]
    NoDataDir,
    /// A file operation failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The request failed in transport. The message carries the whole cause chain (e.g.
    /// "connection refused"), as reqwest's own message alone hides it; the error is kept for
    /// callers that inspect it.
    #[error("cannot download {url}: {}; {by_hand}", error_chain(.error))]
    Request {
        /// What was downloaded.
        url: String,
        /// The transport error, without the URL.
        error: reqwest::Error,
        /// What to do by hand instead ([`PFG_BY_HAND`], [`OPINIONQA_BY_HAND`]).
        by_hand: &'static str,
    },
    /// The server answered with a non-success status.
    #[error("cannot download {url}: the server answered HTTP {status}; {by_hand}")]
    Status {
        /// What was downloaded.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What to do by hand instead.
        by_hand: &'static str,
    },
    /// The destination holds something else, which is never overwritten.
    #[error(
        "{} exists and is not a ConvoKit corpus; it is left untouched: choose another directory",
        path.display()
    )]
    DestinationInUse {
        /// The destination.
        path: PathBuf,
    },
    /// The download is not a zip archive.
    #[error("{url} is not a readable zip archive: {source}")]
    Zip {
        /// What was downloaded.
        url: String,
        /// Why it could not be read.
        #[source]
        source: zip::result::ZipError,
    },
    /// A download does not match its pinned digest.
    #[error(
        "{url} does not match its pinned sha256 (expected {expected}, got {got}); nothing was installed"
    )]
    Checksum {
        /// What was downloaded.
        url: String,
        /// The pinned sha256.
        expected: String,
        /// The download's sha256.
        got: String,
    },
    /// The archive holds no corpus.
    #[error("the archive from {url} holds no ConvoKit corpus (no utterances.jsonl)")]
    NoCorpus {
        /// What was downloaded.
        url: String,
    },
    /// The unpacked corpus does not load.
    #[error("the archive from {url} unpacked, but does not load: {source}")]
    Invalid {
        /// What was downloaded.
        url: String,
        /// Why it does not load.
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
/// what was there only once the new corpus loads), reporting the download to `progress`.
/// Returns the loaded dataset.
pub async fn fetch_convokit_corpus(
    url: &str,
    dest: &Path,
    progress: &Progress,
) -> Result<PfgDataset, FetchError> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    check_replaceable(dest)?;
    let created = create_dirs(&parent).map_err(io(&parent))?;
    let result = async {
        let mut zip_file = tempfile::Builder::new()
            .prefix(".vsim-download-")
            .suffix(".zip")
            .tempfile_in(&parent)
            .map_err(io(&parent))?;
        download(url, zip_file.as_file_mut(), &format!("downloading {CORPUS_NAME}"), progress, PFG_BY_HAND)
            .await?;

        let (url_owned, dest_owned, parent) = (url.to_string(), dest.to_path_buf(), parent.clone());
        tokio::task::spawn_blocking(move || {
            unpack_and_install(&url_owned, zip_file.path(), &parent, &dest_owned)
        })
        .await
        .map_err(|e| FetchError::Io { path: dest.to_path_buf(), source: std::io::Error::other(e) })?
    }
    .await;
    if result.is_err() {
        remove_created(&created);
    }
    result
}

/// Creates `dir` and its missing parents; returns those it created, deepest first, so that
/// a download that fails leaves no empty folder behind ([`remove_created`]).
fn create_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .map(Path::to_path_buf)
        .collect();
    std::fs::create_dir_all(dir)?;
    Ok(missing)
}

/// Removes the folders [`create_dirs`] created, deepest first, as long as they are empty.
fn remove_created(created: &[PathBuf]) {
    for dir in created {
        if std::fs::remove_dir(dir).is_err() {
            break;
        }
    }
}

/// Streams `url` into `out`, reported to `progress` as a step labelled `what`; a failure
/// says what to do by hand (`by_hand`).
async fn download(
    url: &str,
    out: &mut std::fs::File,
    what: &str,
    progress: &Progress,
    by_hand: &'static str,
) -> Result<(), FetchError> {
    let request = |error: reqwest::Error| FetchError::Request {
        url: url.to_string(),
        error: error.without_url(),
        by_hand,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .user_agent(concat!("vsim/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(request)?;
    let mut response = client.get(url).send().await.map_err(request)?;
    if !response.status().is_success() {
        return Err(FetchError::Status { url: url.to_string(), status: response.status().as_u16(), by_hand });
    }
    progress.started(what, response.content_length());
    let result = async {
        while let Some(chunk) = response.chunk().await.map_err(request)? {
            out.write_all(&chunk)
                .map_err(|source| FetchError::Io { path: PathBuf::from("(download)"), source })?;
            progress.advanced(chunk.len() as u64);
        }
        out.flush().map_err(|source| FetchError::Io { path: PathBuf::from("(download)"), source })
    }
    .await;
    progress.finished();
    result
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

/// Where OpinionQA's wave-26 aggregates are published: the only commit of
/// `tatsu-lab/opinions_qa` that holds the data folder (the next one deletes it).
pub const OPINIONQA_W26_URL: &str = "https://raw.githubusercontent.com/tatsu-lab/opinions_qa/\
    ed8c4e0ac1a48c77e041db58d877eb3d0d949d65/data/human_resp/American_Trends_Panel_W26";

/// The wave-26 files and their sha256, pinned: a download that differs is refused.
pub const OPINIONQA_W26_FILES: [(&str, &str); 7] = [
    ("info.csv", "e24b42c3c6724e3ce83d83925ee03d5ade307cfe5721f0d1eee4bb086d5408c4"),
    ("NONE_data.json", "2c42ae32a40303ea6be8a74d35ab79f8c2f9fcd09e154706987675ed18ce531f"),
    ("POLPARTY_data.json", "2c42ae32a40303ea6be8a74d35ab79f8c2f9fcd09e154706987675ed18ce531f"),
    ("POLIDEOLOGY_data.json", "6f5062dbb1fb1a973af4f27e6416cc53c9ad0818f6ab43a699d3d68c8869fef4"),
    ("SEX_data.json", "b1e07607aa142a6a1ac735a6dfe0838cfd3c65a2df8bfc90b4f828a4ea16b0f8"),
    ("AGE_data.json", "f0f364a6425fedf6e19816df40d741b1fd131d66dd7f9b2b372dbdb5b940ac30"),
    ("EDUCATION_data.json", "3051f51c112f888b6692913393a5f5339cbcab2803aaf8fa5b98f724458a4d69"),
];

/// The default home of the wave: `<data dir>/vsim/datasets/opinionqa/W26`.
pub fn default_opinionqa_dir() -> Result<PathBuf, FetchError> {
    dirs::data_dir()
        .map(|d| d.join("vsim").join("datasets").join("opinionqa").join("W26"))
        .ok_or(FetchError::NoDataDir)
}

/// True when `dir` holds every wave-26 file with its pinned sha256.
pub fn is_opinionqa_w26(dir: &Path) -> bool {
    OPINIONQA_W26_FILES.iter().all(|(name, sha)| {
        crate::wheel::sha256_file(&dir.join(name), name, &Progress::silent())
            .is_ok_and(|(digest, _)| digest == *sha)
    })
}

/// Downloads OpinionQA's wave-26 files from `base_url` into `dest`, each checked against its
/// pinned sha256 in a temporary directory beside `dest`, which is renamed into place only
/// when all of them match. Each download is reported to `progress`.
pub async fn fetch_opinionqa_w26(base_url: &str, dest: &Path, progress: &Progress) -> Result<(), FetchError> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    let empty_dir = std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_none());
    if dest.exists() && !empty_dir && !is_opinionqa_w26(dest) {
        return Err(FetchError::DestinationInUse { path: dest.to_path_buf() });
    }
    let created = create_dirs(&parent).map_err(io(&parent))?;
    let result = async {
        let staging =
            tempfile::Builder::new().prefix(".vsim-download-").tempdir_in(&parent).map_err(io(&parent))?;
        for (name, sha) in OPINIONQA_W26_FILES {
            let url = format!("{}/{name}", base_url.trim_end_matches('/'));
            let path = staging.path().join(name);
            let mut file = std::fs::File::create(&path).map_err(io(&path))?;
            download(&url, &mut file, &format!("downloading {name}"), progress, OPINIONQA_BY_HAND).await?;
            let digest = crate::wheel::sha256_file(&path, name, &Progress::silent())
                .map(|(d, _)| d)
                .unwrap_or_default();
            if digest != sha {
                return Err(FetchError::Checksum { url, expected: sha.to_string(), got: digest });
            }
        }
        if dest.exists() {
            std::fs::remove_dir_all(dest).map_err(io(dest))?;
        }
        std::fs::rename(staging.keep(), dest).map_err(io(dest))?;
        Ok(())
    }
    .await;
    if result.is_err() {
        remove_created(&created);
    }
    result
}
