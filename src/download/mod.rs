//! Models by URL (native only; the browser gets its own loader).
//!
//! A model spec is a local path, an `http(s)://` URL, or `hf:owner/repo[@revision]/path/file.gguf`
//! (Hugging Face's `resolve` URL). [`resolve_model`] returns local paths unchanged and downloads
//! anything else once into [`DownloadOptions::cache_dir`], keyed by URL ([`cache_path`]), so a
//! second call makes no request. Nothing here reads environment variables: the caller (the CLI)
//! picks the cache directory and the token.
//!
//! A download is written to a `.part` file in the cache directory and renamed to its cache name
//! only after the body's size equals the `Content-Length` (a response without one, which Hugging
//! Face never sends, is taken as complete when the connection closes cleanly) and the file starts
//! with the GGUF magic, so an interrupted download (connection cut, server error, Ctrl-C) never leaves a file
//! that a later call takes as complete. The cache is never revalidated: `resolve/main` follows
//! whatever the branch held on the first download; pin `@revision` (a commit) to be exact, or
//! delete the cached file to fetch again.

mod fetch;
mod progress;

use std::path::{Path, PathBuf};
use thiserror::Error;

pub use progress::progress_line;

/// Where `hf:` specs resolve to.
pub const HF_ENDPOINT: &str = "https://huggingface.co";

#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Downloaded models live here, one file per URL; created when missing.
    pub cache_dir: PathBuf,
    /// Sent as `Authorization: Bearer …`, only to URLs under `hf_endpoint` (never to other hosts,
    /// and not across redirects: Hugging Face's CDN links are pre-signed).
    pub token: Option<String>,
    /// Progress on stderr: a redrawn bar on a terminal, a few plain lines otherwise.
    pub progress: bool,
    /// Base of `hf:` specs; [`HF_ENDPOINT`] unless pointed at a mirror (or a test server).
    pub hf_endpoint: String,
}

impl DownloadOptions {
    /// Progress on, no token, the Hugging Face endpoint.
    pub fn new(cache_dir: impl Into<PathBuf>) -> DownloadOptions {
        DownloadOptions { cache_dir: cache_dir.into(), token: None, progress: true, hf_endpoint: HF_ENDPOINT.into() }
    }
}

#[derive(Debug, Error)]
pub enum DownloadError {
    #[error("bad model spec {0}")]
    BadSpec(String),
    #[error("{url}: HTTP {status}{hint}")]
    Http { url: String, status: u16, hint: String },
    #[error("{url}: {message}")]
    Network { url: String, message: String },
    #[error("{url}: Content-Length says {expected} bytes but {got} arrived")]
    SizeMismatch { url: String, expected: u64, got: u64 },
    #[error("{0}: the download is not a GGUF file (it does not start with the GGUF magic)")]
    NotGguf(String),
    #[error("model cache {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl DownloadError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> DownloadError {
        DownloadError::Io { path: path.to_path_buf(), source }
    }
}

/// Whether `spec` names something to download (`http://`, `https://` or `hf:`) rather than a
/// local path.
pub fn is_remote(spec: &str) -> bool {
    is_url(spec) || spec.starts_with("hf:")
}

fn is_url(spec: &str) -> bool {
    let lower = spec.get(..8).unwrap_or(spec).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Local paths are returned unchanged; URLs and `hf:` specs are downloaded once and cached.
pub fn resolve_model(spec: &str, opts: &DownloadOptions) -> Result<PathBuf, DownloadError> {
    let url = if is_url(spec) {
        spec.to_string()
    } else if spec.starts_with("hf:") {
        hf_url_at(spec, &opts.hf_endpoint)?
    } else {
        return Ok(PathBuf::from(spec));
    };
    let path = cache_path(&url, &opts.cache_dir);
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&opts.cache_dir).map_err(|e| DownloadError::io(&opts.cache_dir, e))?;
    let token = opts.token.as_deref().filter(|_| under_endpoint(&url, &opts.hf_endpoint));
    fetch::download(&url, &path, token, opts.progress)?;
    Ok(path)
}

/// `url` is `endpoint` itself or a path below it (so `https://huggingface.co.evil` is not).
fn under_endpoint(url: &str, endpoint: &str) -> bool {
    let endpoint = endpoint.trim_end_matches('/');
    url.strip_prefix(endpoint).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `hf:owner/repo/path/file.gguf` → `https://huggingface.co/owner/repo/resolve/main/path/file.gguf`;
/// `hf:owner/repo@rev/path` resolves `rev` instead of `main`.
pub fn hf_url(spec: &str) -> Result<String, DownloadError> {
    hf_url_at(spec, HF_ENDPOINT)
}

/// [`hf_url`] against another endpoint (a mirror, a test server).
pub fn hf_url_at(spec: &str, endpoint: &str) -> Result<String, DownloadError> {
    let bad = |why: &str| {
        DownloadError::BadSpec(format!("{spec:?}: {why} (expected hf:owner/repo[@revision]/path/file.gguf)"))
    };
    let rest = spec.strip_prefix("hf:").ok_or_else(|| bad("it does not start with hf:"))?;
    let mut parts = rest.splitn(3, '/');
    let (owner, repo, file) = match (parts.next(), parts.next(), parts.next()) {
        (Some(o), Some(r), Some(f)) => (o, r, f),
        _ => return Err(bad("it needs an owner, a repository and a file path")),
    };
    let (repo, revision) = match repo.split_once('@') {
        Some((r, rev)) => (r, rev),
        None => (repo, "main"),
    };
    let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !name_ok(owner) || owner.starts_with('.') {
        return Err(bad("the owner is empty or has characters other than letters, digits, '-', '_', '.'"));
    }
    if !name_ok(repo) || repo.starts_with('.') {
        return Err(bad("the repository is empty or has characters other than letters, digits, '-', '_', '.'"));
    }
    if !name_ok(revision) {
        return Err(bad("the revision after '@' is empty or has characters other than letters, digits, '-', '_', '.'"));
    }
    let segments: Vec<&str> = file.split('/').collect();
    if segments.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return Err(bad("the file path is empty or has an empty, '.' or '..' segment"));
    }
    if file.chars().any(|c| c.is_control()) {
        return Err(bad("the file path has control characters"));
    }
    let path: Vec<String> = segments.iter().map(|s| percent_encode(s)).collect();
    Ok(format!("{}/{owner}/{repo}/resolve/{revision}/{}", endpoint.trim_end_matches('/'), path.join("/")))
}

fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The cache file for `url`: the URL's last path segment (made filesystem-safe) with a short
/// hash of the whole URL before its extension, e.g. `stories260K-28a5315e7343fc48.gguf`.
pub fn cache_path(url: &str, cache_dir: &Path) -> PathBuf {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = no_query.split_once("://").map_or(no_query, |(_, rest)| rest);
    let url_path = after_scheme.split_once('/').map_or("", |(_, path)| path);
    let last = url_path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let name: String =
        last.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).take(100).collect();
    // No hidden files (the `.part` files are not hidden either, but they end in `.part`).
    let name = match name.trim_start_matches('.') {
        "" => "model",
        n => n,
    };
    let hash = format!("{:016x}", fnv1a64(url.as_bytes()));
    let file = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 8 && ext.chars().all(|c| c.is_ascii_alphanumeric()) => {
            format!("{stem}-{hash}.{ext}")
        }
        _ => format!("{name}-{hash}"),
    };
    cache_dir.join(file)
}

/// FNV-1a, 64 bits: stable across builds and platforms, which is all a cache key needs.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}
