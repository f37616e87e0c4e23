//! The `pocketllm` binary end to end: output formats, and one-line typed errors with a
//! non-zero exit for bad input.

mod common;

use std::process::{Command, Output};

fn pocketllm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pocketllm")).args(args).output().unwrap()
}

fn fixture_path(rel: &str) -> Option<String> {
    Some(common::fixtures()?.join(rel).to_str().unwrap().to_string())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const STORIES: &str = "models/stories260k/stories260K-F32.gguf";

#[test]
fn info_reports_the_model() {
    let Some(m) = fixture_path("models/random/qwen2-Q4_K_M.gguf") else { return };
    let o = pocketllm(&["info", "--model", &m]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["architecture"], "qwen2");
    assert_eq!(v["vocab_size"], 512);
    assert_eq!(v["context_length"], 256);
    assert_eq!(v["supported"], true);
    assert!(v["tensor_types"]["Q4_K"].as_u64().unwrap() > 0);
    assert!(v["tensor_types"]["Q6_K"].as_u64().unwrap() > 0);
    // 1.3M parameters per the file's own size label.
    let p = v["parameter_count"].as_u64().unwrap();
    assert!((1_000_000..1_600_000).contains(&p), "{p}");
}

#[test]
fn tokenize_and_detokenize_round_trip() {
    let Some(m) = fixture_path(STORIES) else { return };
    let o = pocketllm(&["tokenize", "--model", &m, "--text", "Once upon a time"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ids: Vec<u32> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ids, [1, 403, 407, 261, 378]);
    let o = pocketllm(&["tokenize", "--model", &m, "--text", "Once upon a time", "--no-bos"]);
    let ids: Vec<u32> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ids, [403, 407, 261, 378]);
    let o = pocketllm(&["detokenize", "--model", &m, "--tokens", "403,407,261,378"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8(o.stdout).unwrap().trim_start(), "Once upon a time");
}

/// Whether this machine has a GPU adapter (SKIPPED said loudly when not; CI=true fails).
fn has_gpu() -> bool {
    common::gpu(&pocketllm::backend::gpu::GpuOptions::default()).is_some()
}

#[test]
fn run_greedy_prints_the_golden_story_on_every_backend() {
    let Some(m) = fixture_path(STORIES) else { return };
    let golden: serde_json::Value =
        serde_json::from_slice(&common::read_fixture("goldens/stories260K-F32.json").unwrap()).unwrap();
    let expected = golden["prompt"]["greedy_text"].as_str().unwrap();
    let backends: &[&str] = if has_gpu() { &["cpu", "gpu"] } else { &["cpu"] };
    for &backend in backends {
        let args = ["run", "--model", &m, "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "64"];
        let o = pocketllm(&[&args[..], &["--backend", backend]].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        let text = String::from_utf8(o.stdout.clone()).unwrap();
        assert_eq!(text.strip_suffix('\n').unwrap(), expected, "--backend {backend}");
        let err = stderr(&o);
        assert!(
            err.contains("prefill")
                && err.contains("decode")
                && err.contains("tok/s")
                && err.contains(&format!("backend {backend} (")),
            "{err}"
        );
    }
}

#[test]
fn auto_says_which_backend_it_took_and_why() {
    let Some(m) = fixture_path(STORIES) else { return };
    let o = pocketllm(&["run", "--model", &m, "--prompt", "Once", "--temperature", "0", "--max-tokens", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let line = err.lines().find(|l| l.starts_with("backend: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("(auto: "), "{line}");
    match common::gpu(&pocketllm::backend::gpu::GpuOptions::default()) {
        // lavapipe / SwiftShader: correct but slower than the CPU backend, so auto passes.
        Some(ctx) if ctx.adapter_info().device_type == wgpu::DeviceType::Cpu => {
            assert!(line.starts_with("backend: cpu") && line.contains("software renderer"), "{line}")
        }
        Some(_) => assert!(line.starts_with("backend: gpu"), "{line}"),
        None => assert!(line.starts_with("backend: cpu"), "{line}"),
    }
}

#[test]
fn logits_writes_every_position() {
    let Some(m) = fixture_path(STORIES) else { return };
    let out = std::env::temp_dir().join(format!("pocketllm-logits-{}.bin", std::process::id()));
    let o = pocketllm(&[
        "logits",
        "--model",
        &m,
        "--tokens",
        "1,403,407",
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("[3, 512]"), "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_eq!(bytes.len(), 3 * 512 * 4);
    // Row 0 equals the golden's first row (sequence [1]).
    let golden = common::read_fixture("goldens/stories260K-F32.logits.f32.bin").unwrap();
    for (a, b) in bytes[..512 * 4].chunks_exact(4).zip(golden[..512 * 4].chunks_exact(4)) {
        let (a, b) = (f32::from_le_bytes(a.try_into().unwrap()), f32::from_le_bytes(b.try_into().unwrap()));
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
}

fn bench(m: &str, backend: &str, more: &[&str]) -> serde_json::Value {
    let args = ["bench", "--model", m, "--prompt-tokens", "16", "--gen-tokens", "8", "--backend", backend];
    let o = pocketllm(&[&args[..], more].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in ["load_ms", "prefill_tok_s", "decode_tok_s"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
    assert_eq!(v["gen_tokens"], 8);
    v
}

#[test]
fn bench_prints_one_json_line_with_the_per_token_work() {
    let Some(m) = fixture_path(STORIES) else { return };
    let v = bench(&m, "cpu", &[]);
    assert_eq!(v["backend"], "cpu (1 thread)");
    assert_eq!(v["kv_cache"], "f32");
    // stories260K: 5 layers x 2048 positions x (32 + 32) key and value widths.
    assert_eq!(v["kv_cache_bytes"], 5 * 2048 * 64 * 4);
    let half = bench(&m, "cpu", &["--kv-cache", "f16"]);
    assert_eq!((&half["kv_cache"], &half["kv_cache_bytes"]), (&"f16".into(), &(5 * 2048 * 64 * 2).into()));
    assert_eq!(v["per_decode_token"]["dispatches"], 0.0, "{v}");
    if !has_gpu() {
        return;
    }
    let v = bench(&m, "gpu", &[]);
    assert!(v["backend"].as_str().unwrap().starts_with("gpu ("), "{v}");
    // An f16 KV cache by default where the device has shader-f16 (lavapipe has), f32 on request.
    let ctx = common::gpu(&pocketllm::backend::gpu::GpuOptions::default()).unwrap();
    let f16 = ctx.features().contains(wgpu::Features::SHADER_F16);
    assert_eq!(v["kv_cache"], if f16 { "f16" } else { "f32" }, "{v}");
    // Sampling (top_k 40): the candidates come back, 64 of them at 8 bytes, not 512 logits.
    let sampled = bench(&m, "gpu", &["--temperature", "0.8"]);
    assert_eq!(sampled["per_decode_token"]["bytes_read"].as_f64(), Some(512.0), "{sampled}");
    assert_eq!(sampled["per_decode_token"]["dispatches"].as_f64(), Some(44.0), "{sampled}");
    let f32_kv = bench(&m, "gpu", &["--kv-cache", "f32"]);
    assert_eq!(f32_kv["kv_cache"], "f32");
    assert_eq!(f32_kv["kv_cache_bytes"], 5 * 2048 * 64 * 4);
    if f16 {
        assert_eq!(v["kv_cache_bytes"], 5 * 2048 * 64 * 2);
    }
    // stories260K: 5 layers of 8 dispatches, plus embed, final norm, head and argmax.
    let t = &v["per_decode_token"];
    assert_eq!(
        (t["submits"].as_f64(), t["dispatches"].as_f64(), t["bytes_read"].as_f64()),
        (Some(1.0), Some(44.0), Some(4.0)),
        "{v}"
    );
}

/// Each case must fail with exit code 1 or 2 and a single `error` line naming the problem.
#[test]
fn bad_input_gives_one_line_errors() {
    let Some(m) = fixture_path(STORIES) else { return };
    let dir = std::env::temp_dir().join(format!("pocketllm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(&m).unwrap();
    let truncated = dir.join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.join("garbage.gguf");
    std::fs::write(&garbage, b"this is not a model").unwrap();
    let (t, g) = (truncated.to_str().unwrap(), garbage.to_str().unwrap());
    let long_prompt = "Once upon a time ".repeat(200);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "--model", t, "--prompt", "hi"], "bad_gguf"),
        (vec!["info", "--model", g], "not a GGUF file"),
        (vec!["run", "--model", "/nonexistent.gguf", "--prompt", "hi"], "cannot read"),
        (vec!["logits", "--model", &m, "--tokens", "1,999999", "--out", "/dev/null"], "out of range"),
        (vec!["detokenize", "--model", &m, "--tokens", "5,512"], "out of range"),
        (vec!["run", "--model", &m, "--prompt", &long_prompt, "--ctx", "64"], "context_full"),
        (vec!["run", "--model", &m, "--prompt", "hi", "--temperature", "-1"], "temperature"),
        (vec!["run", "--model", &m, "--prompt", "hi", "--top-p", "1.5"], "top_p"),
        (vec!["run", "--model", &m, "--prompt", "hi", "--backend", "tpu"], "--backend"),
        (vec!["run", "--model", &m, "--prompt", "hi", "--bogus", "1"], "--bogus"),
        (vec!["frobnicate"], "unknown command"),
        (vec!["run", "--model", &m, "--prompt", "hi", "--kv-cache", "q8"], "--kv-cache"),
        (vec!["logits", "--model", &m, "--tokens", "1,x", "--out", "/dev/null"], "not a token id"),
    ];
    for (args, needle) in cases {
        let o = pocketllm(&args);
        let err = stderr(&o);
        assert!(matches!(o.status.code(), Some(1) | Some(2)), "{args:?}: {:?} {err}", o.status);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        assert!(errors.len() == 1 && errors[0].contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn interactive_chat_streams_resets_and_exits() {
    use std::io::Write;
    let Some(m) = fixture_path(STORIES) else { return };
    let mut child = Command::new(env!("CARGO_BIN_EXE_pocketllm"))
        .args(["chat", "--model", &m, "--temperature", "0", "--max-tokens", "12", "--backend", "cpu"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"Once upon a time\n/reset\nOnce upon a time\n/exit\nnever read\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    // Two answers, each followed by a newline; after /reset the same question gets the same
    // greedy answer.
    let (first, second) = out.split_at(out.len() / 2);
    assert!(out.len() > 10 && first == second && first.ends_with('\n'), "{out:?}");
    let err = stderr(&o);
    assert!(err.contains("(conversation cleared)") && err.matches("| finish ").count() == 2, "{err}");
}

#[test]
fn run_chat_applies_the_template() {
    let Some(m) = fixture_path(STORIES) else { return };
    let o = pocketllm(&[
        "run",
        "--model",
        &m,
        "--chat",
        "--system",
        "Be kind.",
        "--prompt",
        "Hi",
        "--temperature",
        "0",
        "--max-tokens",
        "8",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The chat prompt is longer than the bare "Hi" (template text around it).
    let err = stderr(&o);
    let prefill: usize = err.split("prefill ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(prefill > 5, "{err}");
    let o = pocketllm(&["run", "--model", &m, "--system", "x", "--prompt", "Hi"]);
    assert_eq!(o.status.code(), Some(2), "--system without --chat is a usage error");
}
