//! Models by URL: downloads from a server on 127.0.0.1 that the tests start and stop, the cache
//! (a second resolve makes no request), every failure a typed error that leaves no cache entry,
//! `hf:` specs, and the CLI end to end.

#[path = "download/cli.rs"]
mod cli;
#[path = "download/server.rs"]
mod server;

use pocketllm::download::{
    DownloadError, DownloadOptions, cache_path, hf_url, hf_url_at, is_remote, progress_line, resolve_model,
};
use pocketllm::quant::GgmlType;
use pocketllm::synth::{SynthArch, synth_model};
use server::{Reply, Server};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A small real model (so the CLI can run it), built once.
fn model() -> &'static [u8] {
    static MODEL: OnceLock<Vec<u8>> = OnceLock::new();
    MODEL.get_or_init(|| synth_model(SynthArch::Llama, GgmlType::Q8_0, 11))
}

/// A fresh, empty directory under the target dir, named after the test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("download-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn options(cache: &Path) -> DownloadOptions {
    DownloadOptions { progress: false, ..DownloadOptions::new(cache) }
}

/// Every file in `dir` (a missing dir has none).
fn files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

fn serve_model() -> Server {
    Server::start(|path| match path {
        "/m.gguf" => Reply::Body(model().to_vec()),
        _ => Reply::Status(404),
    })
}

#[test]
fn downloads_once_then_uses_the_cache() {
    let cache = temp_dir("once");
    let server = serve_model();
    let url = server.url("/m.gguf");
    let path = resolve_model(&url, &options(&cache)).unwrap();
    assert_eq!(path, cache_path(&url, &cache));
    assert_eq!(std::fs::read(&path).unwrap(), model());
    assert_eq!(server.hits(), 1);
    // The second resolve finds the file and makes no request.
    assert_eq!(resolve_model(&url, &options(&cache)).unwrap(), path);
    assert_eq!(server.hits(), 1);
    assert_eq!(files(&cache), [path.file_name().unwrap().to_str().unwrap()], "only the model, no .part left");
}

#[test]
fn local_paths_are_returned_unchanged() {
    let cache = temp_dir("local").join("never-made");
    for spec in ["model.gguf", "/abs/dir/model.gguf", "./rel/hf.gguf", "C:\\models\\x.gguf"] {
        assert!(!is_remote(spec));
        assert_eq!(resolve_model(spec, &options(&cache)).unwrap(), PathBuf::from(spec));
    }
    assert!(!cache.exists(), "a local path does not create the cache directory");
    assert!(is_remote("https://x/y.gguf") && is_remote("HTTP://x/y.gguf") && is_remote("hf:a/b/c.gguf"));
}

#[test]
fn redirects_are_followed() {
    let cache = temp_dir("redirect");
    let server = Server::start(|path| match path {
        "/hub/m.gguf" => Reply::Redirect("/cdn/blob?signature=abc".into()),
        "/cdn/blob?signature=abc" => Reply::Body(model().to_vec()),
        _ => Reply::Status(404),
    });
    let url = server.url("/hub/m.gguf");
    let path = resolve_model(&url, &options(&cache)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), model());
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/hub/m.gguf", "/cdn/blob?signature=abc"]);
    // Cached under the URL that was asked for, not the one it redirected to.
    assert_eq!(path, cache_path(&url, &cache));
}

#[test]
fn redirect_loops_are_an_error() {
    let cache = temp_dir("loop");
    let server = Server::start(|_| Reply::Redirect("/again.gguf".into()));
    let err = resolve_model(&server.url("/again.gguf"), &options(&cache)).unwrap_err();
    assert!(matches!(err, DownloadError::Network { .. }), "{err:?}");
    assert!(files(&cache).is_empty());
}

#[test]
fn http_errors_name_the_url_and_status_and_cache_nothing() {
    let cache = temp_dir("status");
    let server = Server::start(|path| match path {
        "/gated.gguf" => Reply::Status(401),
        "/forbidden.gguf" => Reply::Status(403),
        "/broken.gguf" => Reply::Status(500),
        _ => Reply::Status(404),
    });
    for (path, code, hint) in [
        ("/missing.gguf", 404, "not found"),
        ("/gated.gguf", 401, "gated"),
        ("/forbidden.gguf", 403, "token"),
        ("/broken.gguf", 500, "server error"),
    ] {
        let url = server.url(path);
        match resolve_model(&url, &options(&cache)).unwrap_err() {
            DownloadError::Http { url: u, status, hint: h } => {
                assert_eq!((u.as_str(), status), (url.as_str(), code));
                assert!(h.contains(hint), "{h}");
            }
            e => panic!("{path}: {e:?}"),
        }
        let message = pocketllm::Error::from(resolve_model(&url, &options(&cache)).unwrap_err());
        assert_eq!(message.code(), "network");
        assert!(message.to_string().contains(&url) && message.to_string().contains(&code.to_string()), "{message}");
    }
    assert!(files(&cache).is_empty(), "{:?}", files(&cache));
}

#[test]
fn a_connection_cut_mid_body_leaves_nothing_and_a_retry_succeeds() {
    let cache = temp_dir("cut");
    let attempts = AtomicUsize::new(0);
    let server = Server::start(move |_| {
        let body = model().to_vec();
        if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::Cut { content_length: body.len() as u64, send: body.len() / 2, body }
        } else {
            Reply::Body(body)
        }
    });
    let url = server.url("/m.gguf");
    let err = resolve_model(&url, &options(&cache)).unwrap_err();
    match &err {
        DownloadError::SizeMismatch { url: u, expected, got } => {
            assert_eq!((u, *expected), (&url, model().len() as u64));
            assert!(*got < *expected, "{got}");
        }
        DownloadError::Network { url: u, .. } => assert_eq!(u, &url),
        e => panic!("{e:?}"),
    }
    assert!(files(&cache).is_empty(), "no cache entry and no .part: {:?}", files(&cache));
    // The retry downloads again (nothing half-done was taken as complete) and succeeds.
    let path = resolve_model(&url, &options(&cache)).unwrap();
    assert_eq!(server.hits(), 2);
    assert_eq!(std::fs::read(path).unwrap(), model());
}

#[test]
fn a_content_length_larger_than_the_body_is_a_size_mismatch() {
    let cache = temp_dir("length");
    let server = Server::start(|_| {
        let body = model().to_vec();
        Reply::Cut { content_length: body.len() as u64 + 1000, send: body.len(), body }
    });
    let url = server.url("/m.gguf");
    match resolve_model(&url, &options(&cache)).unwrap_err() {
        DownloadError::SizeMismatch { url: u, expected, got } => {
            assert_eq!((u, expected, got), (url, model().len() as u64 + 1000, model().len() as u64))
        }
        e => panic!("{e:?}"),
    }
    assert!(files(&cache).is_empty(), "{:?}", files(&cache));
}

#[test]
fn a_download_that_is_not_gguf_is_refused() {
    let cache = temp_dir("not-gguf");
    let server = Server::start(|path| match path {
        "/page.gguf" => Reply::Body(b"<!doctype html><title>Sign in</title>".to_vec()),
        _ => Reply::Body(Vec::new()),
    });
    for path in ["/page.gguf", "/empty.gguf"] {
        let url = server.url(path);
        let err = resolve_model(&url, &options(&cache)).unwrap_err();
        assert!(matches!(&err, DownloadError::NotGguf(u) if *u == url), "{err:?}");
        assert_eq!(pocketllm::Error::from(err).code(), "network");
    }
    assert!(files(&cache).is_empty(), "{:?}", files(&cache));
}

#[test]
fn a_leftover_part_file_is_never_taken_as_complete() {
    let cache = temp_dir("leftover");
    let server = serve_model();
    let url = server.url("/m.gguf");
    let dest = cache_path(&url, &cache);
    let name = dest.file_name().unwrap().to_str().unwrap().to_string();
    // What a killed download leaves: a .part with the whole model in it (a long time ago), and
    // one that another live download is still writing.
    let stale = cache.join(format!("{name}.4000001.part"));
    let live = cache.join(format!("{name}.4000002.part"));
    std::fs::write(&stale, model()).unwrap();
    std::fs::write(&live, &model()[..100]).unwrap();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&stale).unwrap().set_modified(hour_ago).unwrap();

    assert_eq!(resolve_model(&url, &options(&cache)).unwrap(), dest);
    assert_eq!(server.hits(), 1, "the .part was not used");
    assert_eq!(std::fs::read(&dest).unwrap(), model());
    assert!(!stale.exists(), "a stale .part of the same URL is cleaned up");
    assert!(live.exists(), "a fresh .part may belong to a running download");
}

#[test]
fn the_token_goes_to_the_hf_endpoint_only_and_not_across_redirects() {
    let cache = temp_dir("token");
    let server = Server::start(|path| match path {
        "/hub/owner/repo/resolve/v1.0/sub%20dir/m.gguf" => Reply::Redirect("/cdn/m.gguf".into()),
        "/cdn/m.gguf" | "/elsewhere/m.gguf" => Reply::Body(model().to_vec()),
        _ => Reply::Status(404),
    });
    let opts = DownloadOptions { token: Some("hf_secret".into()), hf_endpoint: server.url("/hub"), ..options(&cache) };
    let path = resolve_model("hf:owner/repo@v1.0/sub dir/m.gguf", &opts).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), model());
    resolve_model(&server.url("/elsewhere/m.gguf"), &opts).unwrap();
    let auth: Vec<(String, Option<String>)> =
        server.requests().into_iter().map(|r| (r.path, r.authorization)).collect();
    assert_eq!(
        auth,
        [
            ("/hub/owner/repo/resolve/v1.0/sub%20dir/m.gguf".to_string(), Some("Bearer hf_secret".to_string())),
            ("/cdn/m.gguf".to_string(), None),
            ("/elsewhere/m.gguf".to_string(), None),
        ]
    );
}

#[test]
fn hf_specs_resolve_to_hugging_face_urls() {
    assert_eq!(
        hf_url("hf:ggml-org/models/tinyllamas/stories260K.gguf").unwrap(),
        "https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf"
    );
    assert_eq!(
        hf_url("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF@9217f5d/qwen2.5-0.5b-instruct-q4_k_m.gguf").unwrap(),
        "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/9217f5d/qwen2.5-0.5b-instruct-q4_k_m.gguf"
    );
    assert_eq!(hf_url("hf:a/b@v2/x y+.gguf").unwrap(), "https://huggingface.co/a/b/resolve/v2/x%20y%2B.gguf");
    assert_eq!(
        hf_url_at("hf:a/b/c.gguf", "http://127.0.0.1:9/").unwrap(),
        "http://127.0.0.1:9/a/b/resolve/main/c.gguf"
    );
    for bad in [
        "hf:",
        "hf:owner",
        "hf:owner/repo",
        "hf:owner/repo/",
        "hf:/repo/m.gguf",
        "hf:owner//m.gguf",
        "hf:owner/repo@/m.gguf",
        "hf:owner/repo@a@b/m.gguf",
        "hf:ow ner/repo/m.gguf",
        "hf:owner/re?po/m.gguf",
        "hf:../repo/m.gguf",
        "hf:owner/repo/a//m.gguf",
        "hf:owner/repo/../m.gguf",
        "hf:owner/repo/m.gguf/",
        "hf:owner/repo/m\n.gguf",
        "owner/repo/m.gguf",
    ] {
        match hf_url(bad) {
            Err(e @ DownloadError::BadSpec(_)) => {
                assert!(e.to_string().contains("hf:owner/repo[@revision]/path"), "{e}");
                if bad.starts_with("hf:") {
                    let cache = temp_dir("bad-spec");
                    let err = pocketllm::Error::from(resolve_model(bad, &options(&cache)).unwrap_err());
                    assert_eq!(err.code(), "invalid_argument", "{bad}");
                }
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn cache_names_are_readable_and_keyed_by_url() {
    let dir = Path::new("/cache");
    let a = cache_path("https://huggingface.co/a/b/resolve/main/stories260K.gguf", dir);
    let b = cache_path("https://huggingface.co/a/b/resolve/v2/stories260K.gguf", dir);
    assert_eq!(a.parent().unwrap(), dir);
    let name = a.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("stories260K-") && name.ends_with(".gguf") && name.len() == "stories260K-.gguf".len() + 16
    );
    assert_ne!(a, b, "the hash tells revisions apart");
    assert_eq!(a, cache_path("https://huggingface.co/a/b/resolve/main/stories260K.gguf", dir), "stable");
    let odd = cache_path("http://h:1/x/..%2F..%2Fetc passwd?download=1#f", dir);
    let odd = odd.file_name().unwrap().to_str().unwrap();
    assert!(odd.starts_with("_2F.._2Fetc_passwd-"), "{odd}");
    assert!(odd.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{odd}");
    for no_name in ["https://example.com", "https://example.com/", "https://example.com/.."] {
        let n = cache_path(no_name, dir);
        assert!(n.file_name().unwrap().to_str().unwrap().starts_with("model-"), "{n:?}");
    }
}

#[test]
fn progress_lines_show_bytes_total_and_rate() {
    let line = progress_line(12_300_000, Some(45_600_000), 2.0);
    assert!(line.contains("12.3 / 45.6 MB") && line.contains("27%") && line.contains("6.2 MB/s"), "{line}");
    assert!(progress_line(45_600_000, Some(45_600_000), 1.0).contains("100%"));
    assert_eq!(progress_line(5_000_000, None, 0.0), "5.0 MB 0.0 MB/s");
}

#[test]
fn a_cache_dir_that_cannot_be_made_is_an_io_error() {
    let dir = temp_dir("io");
    let not_a_dir = dir.join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let server = serve_model();
    let err = resolve_model(&server.url("/m.gguf"), &options(&not_a_dir.join("cache"))).unwrap_err();
    assert!(matches!(&err, DownloadError::Io { path, .. } if path.starts_with(&not_a_dir)), "{err:?}");
    assert_eq!(pocketllm::Error::from(err).code(), "io");
    assert_eq!(server.hits(), 0);
}

#[test]
fn the_readme_cache_name_is_the_real_one() {
    let url = hf_url("hf:ggml-org/models/tinyllamas/stories260K.gguf").unwrap();
    assert_eq!(cache_path(&url, Path::new("c")), Path::new("c/stories260K-28a5315e7343fc48.gguf"));
}
