//! The CLI end to end: `--model URL`, `--cache-dir`, `--hf-token` / `HF_TOKEN` / `HF_ENDPOINT`,
//! errors, and a process killed mid-download.

use super::server::{Reply, Server};
use super::{files, model, serve_model, temp_dir};
use pocketllm::download::cache_path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

fn pocketllm(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pocketllm"));
    cmd.args(args).env_remove("HF_TOKEN").env_remove("HF_ENDPOINT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn cli_runs_a_model_by_url_and_then_from_the_cache() {
    let dir = temp_dir("cli");
    let local = dir.join("local.gguf");
    std::fs::write(&local, model()).unwrap();
    let cache = dir.join("cache");
    let server = serve_model();
    let url = server.url("/m.gguf");
    let run = |model: &str| {
        let args = ["run", "--model", model, "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "8"];
        let o = pocketllm(&[&args[..], &["--backend", "cpu", "--cache-dir", cache.to_str().unwrap()]].concat(), &[]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        o
    };
    let expected = run(local.to_str().unwrap()).stdout;
    assert!(!text(&expected).trim().is_empty());
    let first = run(&url);
    assert_eq!(text(&first.stdout), text(&expected));
    assert!(
        text(&first.stderr).contains("downloading") && text(&first.stderr).contains("100%"),
        "{}",
        text(&first.stderr)
    );
    assert_eq!(server.hits(), 1);
    let second = run(&url);
    assert_eq!(text(&second.stdout), text(&expected));
    assert!(!text(&second.stderr).contains("downloading"));
    assert_eq!(server.hits(), 1, "the second run used the cache");
    assert_eq!(files(&cache).len(), 1);
}

#[test]
fn cli_errors_for_downloads_are_one_typed_line() {
    let dir = temp_dir("cli-errors");
    let server = serve_model();
    let cache = dir.to_str().unwrap();
    let o = pocketllm(&["info", "--model", &server.url("/nope.gguf"), "--cache-dir", cache], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.starts_with("error [network]: ") && err.contains("/nope.gguf") && err.contains("404"), "{err}");
    let o = pocketllm(&["info", "--model", "hf:owner/repo", "--cache-dir", cache], &[]);
    assert!(text(&o.stderr).starts_with("error [invalid_argument]: "), "{}", text(&o.stderr));
    assert!(files(&dir).is_empty());
}

#[test]
fn cli_sends_hf_token_from_the_flag_or_the_environment() {
    let dir = temp_dir("cli-token");
    let server = Server::start(|path| match path {
        "/o/r/resolve/main/m.gguf" => Reply::Body(model().to_vec()),
        _ => Reply::Status(404),
    });
    let endpoint = server.url("");
    let cache = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let info = |extra: &[&str], env: &[(&str, &str)], c: &str| {
        let o = pocketllm(&[&["info", "--model", "hf:o/r/m.gguf", "--cache-dir", c][..], extra].concat(), env);
        assert!(o.status.success(), "{}", text(&o.stderr));
    };
    info(&[], &[("HF_ENDPOINT", &endpoint), ("HF_TOKEN", "from_env")], &cache("a"));
    info(&["--hf-token", "from_flag"], &[("HF_ENDPOINT", &endpoint), ("HF_TOKEN", "from_env")], &cache("b"));
    info(&[], &[("HF_ENDPOINT", &endpoint)], &cache("c"));
    let auth: Vec<Option<String>> = server.requests().into_iter().map(|r| r.authorization).collect();
    assert_eq!(auth, [Some("Bearer from_env".into()), Some("Bearer from_flag".into()), None]);
}

#[test]
fn cli_killed_mid_download_leaves_no_cache_entry_and_the_next_run_downloads_again() {
    let dir = temp_dir("cli-killed");
    let attempts = AtomicUsize::new(0);
    let server = Server::start(move |_| {
        let body = model().to_vec();
        if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::Stall { send: body.len() / 2, body }
        } else {
            Reply::Body(body)
        }
    });
    let url = server.url("/m.gguf");
    let cache = dir.to_str().unwrap();
    let args =
        ["run", "--model", &url, "--prompt", "Once", "--temperature", "0", "--max-tokens", "4", "--cache-dir", cache];
    let mut child = Command::new(env!("CARGO_BIN_EXE_pocketllm"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the download is under way (the .part exists and half the body has been sent),
    // then kill the process: harder than Ctrl-C, no destructor runs.
    let start = std::time::Instant::now();
    while server.hits() == 0 || !files(&dir).iter().any(|f| f.ends_with(".part")) {
        assert!(start.elapsed().as_secs() < 20, "the download did not start: {:?}", files(&dir));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let dest = cache_path(&url, &dir);
    assert!(!dest.exists(), "a killed download is not a cache entry");
    assert_eq!(files(&dir).len(), 1, "only the .part is left: {:?}", files(&dir));

    let o = pocketllm(&args, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(server.hits(), 2, "the next run downloaded again");
    assert_eq!(std::fs::read(&dest).unwrap(), model());
}
