//! `pocketllm` command line: info, tokenize, detokenize, logits (here), run, chat, bench (`generating`).

mod args;
mod backends;
mod generating;

use args::Args;
use pocketllm::Error;
use pocketllm::backend::{Backend, KvType};
use pocketllm::download::{self, DownloadOptions};
use pocketllm::gguf::Gguf;
use pocketllm::model::{Logits, Model, ModelOptions, config::Config, weights};
use pocketllm::tokenizer::Tokenizer;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

const USAGE: &str = "usage: pocketllm <command> --model M.gguf [options]
  info        --model M
  tokenize    --model M --text TEXT [--no-bos] [--special]
  detokenize  --model M --tokens 1,2,3
  logits      --model M --tokens 1,2,3 --out FILE [--backend cpu|gpu|auto] [--threads N]
  run         --model M --prompt TEXT [--chat] [--system TEXT] [--max-tokens N] [--temperature T]
              [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--stop TEXT]
              [--backend cpu|gpu|auto] [--no-bos] [--ctx N] [--threads N] [--kv-cache f32|f16]
  chat        --model M [--system TEXT] [sampling options as for run]
              interactive: type a message; /reset starts over, /exit (or end of input) quits
  bench       --model M [--backend ...] [--prompt-tokens 128] [--gen-tokens 64] [--threads N]
              [--temperature T] [--top-k K] (greedy by default; T > 0 samples, top_k 40, seed 0)
--kv-cache f32|f16 (logits, run, chat, bench): the KV cache's values; default f16 on GPUs with
shader-f16, else f32 (f16 halves the cache; a GPU without shader-f16 refuses it)
M is a path, an http(s):// URL or hf:owner/repo[@revision]/path/file.gguf; downloads are cached in
--cache-dir DIR (default $XDG_CACHE_HOME/pocketllm or ~/.cache/pocketllm); gated Hugging Face repos
need --hf-token TOKEN (default: $HF_TOKEN; $HF_ENDPOINT replaces https://huggingface.co)";

const SWITCHES: &[&str] = &["no-bos", "special", "help", "chat"];

/// Flags of `run` and `chat` that set sampling and stopping.
const GENERATION_FLAGS: &[&str] = &[
    "max-tokens",
    "temperature",
    "top-k",
    "top-p",
    "min-p",
    "repeat-penalty",
    "presence-penalty",
    "frequency-penalty",
    "seed",
    "stop",
];

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match Args::parse(&argv, SWITCHES) {
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            2
        }
        Ok(args) => match run_command(&args) {
            Ok(()) => 0,
            Err(CliError::Usage(e)) => {
                eprintln!("error: {e}\n{USAGE}");
                2
            }
            Err(CliError::Engine(e)) => {
                eprintln!("error [{}]: {e}", e.code());
                1
            }
        },
    };
    std::process::exit(code);
}

pub(crate) enum CliError {
    Usage(String),
    Engine(Error),
}

impl From<String> for CliError {
    fn from(e: String) -> Self {
        CliError::Usage(e)
    }
}

macro_rules! engine_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::Engine(e.into())
            }
        }
    )*};
}
engine_errors!(
    Error,
    pocketllm::gguf::GgufError,
    pocketllm::tokenizer::TokenizerError,
    pocketllm::quant::QuantError,
    pocketllm::chat::ChatError
);

pub(crate) type CliResult = Result<(), CliError>;

fn run_command(a: &Args) -> CliResult {
    let known: &[&str] = match a.command.as_str() {
        "info" => &["model"],
        "tokenize" => &["model", "text", "no-bos", "special"],
        "detokenize" => &["model", "tokens"],
        "logits" => &["model", "tokens", "out", "backend", "threads", "ctx", "kv-cache"],
        "run" => &["model", "prompt", "chat", "system", "backend", "no-bos", "ctx", "threads", "kv-cache"],
        "chat" => &["model", "system", "backend", "ctx", "threads", "kv-cache"],
        "bench" => {
            &["model", "backend", "prompt-tokens", "gen-tokens", "threads", "ctx", "kv-cache", "temperature", "top-k"]
        }
        "help" | "--help" => {
            println!("{USAGE}");
            return Ok(());
        }
        other => return Err(format!("unknown command {other:?}").into()),
    };
    let generation = if matches!(a.command.as_str(), "run" | "chat") { GENERATION_FLAGS } else { &[] };
    // Every command takes --model, so every command takes the flags that say how to fetch it.
    if let Some(flag) = a.unknown(&[known, generation, &["cache-dir", "hf-token"]].concat()) {
        return Err(format!("--{flag} is not an option of {}", a.command).into());
    }
    match a.command.as_str() {
        "info" => info(a),
        "tokenize" => tokenize(a),
        "detokenize" => detokenize(a),
        "logits" => logits(a),
        "run" => generating::run(a),
        "chat" => generating::chat(a),
        _ => generating::bench(a),
    }
}

pub(crate) struct Loaded {
    pub gguf: Gguf,
    pub bytes: Vec<u8>,
}

pub(crate) fn read_model(a: &Args) -> Result<Loaded, CliError> {
    let path = model_path(a)?;
    let bytes =
        std::fs::read(&path).map_err(|e| Error::InvalidArgument(format!("cannot read {}: {e}", path.display())))?;
    let gguf = Gguf::parse(&bytes)?;
    Ok(Loaded { gguf, bytes })
}

/// `--model` as a local path; URLs and `hf:` specs are downloaded into the cache first (or found
/// there). The environment is read here, in the CLI, never by the engine: the cache directory
/// follows the XDG convention, the token and endpoint Hugging Face's `HF_TOKEN` and `HF_ENDPOINT`.
fn model_path(a: &Args) -> Result<PathBuf, CliError> {
    let spec = a.required("model")?;
    if !download::is_remote(spec) {
        return Ok(PathBuf::from(spec));
    }
    let cache_dir = match a.str("cache-dir") {
        Some(dir) => PathBuf::from(dir),
        None => default_cache_dir().ok_or_else(|| {
            "cannot find a cache directory for downloads ($XDG_CACHE_HOME and $HOME are unset): pass --cache-dir"
                .to_string()
        })?,
    };
    let token = a.str("hf-token").map(str::to_string).or_else(|| std::env::var("HF_TOKEN").ok());
    let mut opts = DownloadOptions::new(cache_dir);
    opts.token = token.filter(|t| !t.trim().is_empty());
    // Hugging Face's convention for mirrors; the tests point it at a local server.
    if let Some(endpoint) = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.trim().is_empty()) {
        opts.hf_endpoint = endpoint;
    }
    Ok(download::resolve_model(spec, &opts).map_err(Error::from)?)
}

fn default_cache_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").and_then(absolute) {
        return Some(xdg.join("pocketllm"));
    }
    std::env::var_os("HOME").and_then(absolute).map(|home| home.join(".cache").join("pocketllm"))
}

fn load_model<B: Backend>(a: &Args, l: &Loaded, backend: B) -> Result<(Model<B>, f64), CliError> {
    let t0 = Instant::now();
    let opts = ModelOptions { context_length: a.num("ctx", 0)?, kv_type: kv_type(a)?, ..ModelOptions::default() };
    let model = Model::load(&l.gguf, &l.bytes, backend, &opts)?;
    Ok((model, t0.elapsed().as_secs_f64() * 1e3))
}

/// `--kv-cache f32|f16`; absent: the backend's choice (f16 on GPUs with shader-f16).
pub(crate) fn kv_type(a: &Args) -> Result<Option<KvType>, CliError> {
    a.str("kv-cache")
        .map(|s| KvType::parse(s).ok_or_else(|| CliError::Usage(format!("--kv-cache: {s:?} is not f32 or f16"))))
        .transpose()
}

fn parse_tokens(s: &str) -> Result<Vec<u32>, CliError> {
    s.split(',')
        .map(|t| t.trim().parse::<u32>().map_err(|_| CliError::Usage(format!("--tokens: {t:?} is not a token id"))))
        .collect()
}

fn info(a: &Args) -> CliResult {
    let l = read_model(a)?;
    let md = &l.gguf.metadata;
    let (params, by_type) = weights::tensor_summary(&l.gguf);
    let types: serde_json::Map<String, serde_json::Value> =
        by_type.iter().map(|(t, n)| (t.name().to_string(), json!(n))).collect();
    let arch = md.get_str("general.architecture").unwrap_or("unknown");
    let config = weights::vocab_size(&l.gguf).and_then(|n| Config::from_metadata(md, n));
    let vocab = md.get_str_array("tokenizer.ggml.tokens").map(|t| t.len()).or(config.as_ref().ok().map(|c| c.n_vocab));
    let mut out = json!({
        "architecture": arch,
        "name": md.get_str("general.name"),
        "parameter_count": params,
        "tensor_count": l.gguf.tensors.len(),
        "tensor_types": types,
        "context_length": md.get_u32(&format!("{arch}.context_length")),
        "vocab_size": vocab,
        "chat_template": md.get_str("tokenizer.chat_template").is_some(),
        "gguf_version": l.gguf.version,
        "supported": config.is_ok(),
    });
    match &config {
        Ok(c) => {
            out["layers"] = json!(c.n_layer);
            out["embedding_length"] = json!(c.n_embd);
            out["heads"] = json!(c.n_head);
            out["kv_heads"] = json!(c.n_head_kv);
        }
        Err(e) => out["unsupported_reason"] = json!(e.to_string()),
    }
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
    Ok(())
}

fn tokenize(a: &Args) -> CliResult {
    let l = read_model(a)?;
    let tok = Tokenizer::from_metadata(&l.gguf.metadata)?;
    let ids = tok.encode(a.required("text")?, !a.has("no-bos"), a.has("special"));
    println!("{}", serde_json::to_string(&ids).unwrap());
    Ok(())
}

fn detokenize(a: &Args) -> CliResult {
    let l = read_model(a)?;
    let tok = Tokenizer::from_metadata(&l.gguf.metadata)?;
    let ids = parse_tokens(a.required("tokens")?)?;
    if let Some(&id) = ids.iter().find(|&&id| id as usize >= tok.n_vocab()) {
        return Err(Error::TokenOutOfRange { id, n_vocab: tok.n_vocab() }.into());
    }
    print!("{}", tok.decode(&ids, false));
    Ok(())
}

fn logits(a: &Args) -> CliResult {
    let l = read_model(a)?;
    let tokens = parse_tokens(a.required("tokens")?)?;
    let out_path = a.required("out")?;
    backends::with_backend(a, &mut LogitsTask { a, l: &l, tokens: &tokens, out_path })
}

struct LogitsTask<'a> {
    a: &'a Args,
    l: &'a Loaded,
    tokens: &'a [u32],
    out_path: &'a str,
}

impl backends::OnBackend for LogitsTask<'_> {
    fn run<B: Backend>(&mut self, backend: B, _describe: &str) -> CliResult {
        let (mut model, _) = load_model(self.a, self.l, backend)?;
        let logits = model.forward(self.tokens, 0, Logits::All)?;
        let bytes: Vec<u8> = logits.iter().flat_map(|x| x.to_le_bytes()).collect();
        let path = self.out_path;
        std::fs::write(path, bytes).map_err(|e| Error::InvalidArgument(format!("cannot write {path}: {e}")))?;
        eprintln!("logits: [{}, {}] f32 little-endian -> {path}", self.tokens.len(), model.n_vocab());
        Ok(())
    }
}
