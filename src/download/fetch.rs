//! One download: GET with redirects, body into `<cache name>.<pid>.part`, size and magic checks,
//! then `rename` onto the cache name.

use super::DownloadError;
use super::progress::Progress;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const GGUF_MAGIC: &[u8; 4] = b"GGUF";
/// A `.part` file untouched for this long belongs to a download that died (Ctrl-C, crash) and is
/// removed before the next download of the same URL; a live download writes every few ms.
const STALE_PART: Duration = Duration::from_secs(15 * 60);
const MAX_REDIRECTS: u32 = 10;

pub(super) fn download(url: &str, dest: &Path, token: Option<&str>, progress: bool) -> Result<(), DownloadError> {
    let net = |message: String| DownloadError::Network { url: url.to_string(), message };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        // Statuses are ours to report (with the URL and a hint), not ureq's.
        .http_status_as_error(false)
        .max_redirects(MAX_REDIRECTS)
        // The engine reads no environment, so no proxy from HTTP(S)_PROXY either.
        .proxy(None)
        .user_agent(concat!("pocketllm/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)))
        // A stalled connection is an error, however long the whole download takes.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(t) = token {
        request = request.header("Authorization", format!("Bearer {t}"));
    }
    let response = request.call().map_err(|e| net(e.to_string()))?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err(DownloadError::Http { url: url.to_string(), status, hint: status_hint(status).into() });
    }
    let expected = response.body().content_length();
    let mut body = response.into_body().into_reader();

    remove_stale_parts(dest);
    let part = PartFile::create(dest)?;
    if progress {
        eprintln!("downloading {url}\n         -> {}", dest.display());
    }
    let mut bar = Progress::new(progress, expected);
    let mut writer = io::BufWriter::with_capacity(1 << 20, &part.file);
    let mut buf = vec![0u8; 256 * 1024];
    let mut got: u64 = 0;
    let mut head = Vec::with_capacity(4);
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(match expected {
                    Some(expected) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        DownloadError::SizeMismatch { url: url.to_string(), expected, got }
                    }
                    Some(expected) => net(format!("connection lost after {got} of {expected} bytes: {e}")),
                    None => net(format!("connection lost after {got} bytes: {e}")),
                });
            }
        };
        if head.len() < 4 {
            head.extend_from_slice(&buf[..n.min(4 - head.len())]);
        }
        writer.write_all(&buf[..n]).map_err(|e| DownloadError::io(&part.path, e))?;
        got += n as u64;
        bar.update(got);
    }
    bar.finish(got);
    if let Some(expected) = expected.filter(|&e| e != got) {
        return Err(DownloadError::SizeMismatch { url: url.to_string(), expected, got });
    }
    if head != GGUF_MAGIC {
        return Err(DownloadError::NotGguf(url.to_string()));
    }
    writer.flush().map_err(|e| DownloadError::io(&part.path, e))?;
    drop(writer);
    part.commit(dest)
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            " (unauthorized: the repository may be gated or private and need an access token, \
             e.g. the CLI's --hf-token or HF_TOKEN, from an account that accepted its terms)"
        }
        404 => " (not found: check the URL; for hf: specs the owner, repository, revision and file path)",
        429 => " (rate limited: try again later, or with an access token)",
        500..=599 => " (server error: try again later)",
        _ => "",
    }
}

/// The temporary file beside the cache entry; removed on drop unless committed, so every error
/// path (and a panic) cleans up. A killed process leaves it behind, but nothing reads `.part`
/// files, and the next download of the same URL removes it once it is stale.
struct PartFile {
    path: PathBuf,
    file: File,
    committed: bool,
}

impl PartFile {
    fn create(dest: &Path) -> Result<PartFile, DownloadError> {
        let mut name = dest.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{}.part", std::process::id()));
        let path = dest.with_file_name(name);
        let file = File::create(&path).map_err(|e| DownloadError::io(&path, e))?;
        Ok(PartFile { path, file, committed: false })
    }

    fn commit(mut self, dest: &Path) -> Result<(), DownloadError> {
        self.file.sync_all().map_err(|e| DownloadError::io(&self.path, e))?;
        fs::rename(&self.path, dest).map_err(|e| DownloadError::io(dest, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Removes `<dest name>.*.part` files that nobody has written to for [`STALE_PART`].
fn remove_stale_parts(dest: &Path) {
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name().and_then(|n| n.to_str())) else { return };
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!("{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(f) = file_name.to_str() else { continue };
        if !(f.starts_with(&prefix) && f.ends_with(".part")) {
            continue;
        }
        let age =
            entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| SystemTime::now().duration_since(t).ok());
        if age.is_some_and(|a| a > STALE_PART) {
            let _ = fs::remove_file(entry.path());
        }
    }
}
