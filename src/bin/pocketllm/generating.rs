//! The generating commands, all through `Engine`: `run`, `chat` (interactive) and `bench`.

use crate::args::Args;
use crate::backends::{OnBackend, with_backend};
use crate::{CliError, CliResult, Loaded, read_model};
use pocketllm::backend::Backend;
use pocketllm::chat::ChatMessage;
use pocketllm::engine::{
    CancelToken, ChatRequest, Completion, CompletionRequest, Engine, EngineOptions, GenerationOptions, Prompt,
};
use serde_json::json;
use std::io::{BufRead, Write};
use std::time::Instant;

fn load<B: Backend>(a: &Args, l: &Loaded, backend: B) -> Result<(Engine<B>, f64), CliError> {
    let t0 = Instant::now();
    let opts =
        EngineOptions { context_length: a.num("ctx", 0)?, kv_type: crate::kv_type(a)?, ..EngineOptions::default() };
    let engine = Engine::load_bytes(&l.bytes, backend, opts)?;
    Ok((engine, t0.elapsed().as_secs_f64() * 1e3))
}

/// The three generating commands, run by [`with_backend`] once the model file is read.
#[derive(Clone, Copy)]
enum Command {
    Run,
    Chat,
    Bench,
}

struct Task<'a> {
    a: &'a Args,
    l: &'a Loaded,
    command: Command,
}

impl OnBackend for Task<'_> {
    fn run<B: Backend>(&mut self, backend: B, describe: &str) -> CliResult {
        let (engine, load_ms) = load(self.a, self.l, backend)?;
        match self.command {
            Command::Run => run_on(self.a, engine, load_ms, describe),
            Command::Chat => chat_on(self.a, engine, describe),
            Command::Bench => bench_on(self.a, engine, load_ms, describe),
        }
    }
}

fn with_model(a: &Args, command: Command) -> CliResult {
    let l = read_model(a)?;
    with_backend(a, &mut Task { a, l: &l, command })
}

fn options(a: &Args) -> Result<GenerationOptions, CliError> {
    let d = GenerationOptions::default();
    let opts = GenerationOptions {
        max_tokens: a.num("max-tokens", 128)?,
        temperature: a.num("temperature", d.temperature)?,
        top_k: a.num("top-k", d.top_k)?,
        top_p: a.num("top-p", d.top_p)?,
        min_p: a.num("min-p", d.min_p)?,
        repetition_penalty: a.num("repeat-penalty", d.repetition_penalty)?,
        presence_penalty: a.num("presence-penalty", d.presence_penalty)?,
        frequency_penalty: a.num("frequency-penalty", d.frequency_penalty)?,
        seed: a.num("seed", d.seed)?,
        stop: a.str("stop").map(|s| vec![s.to_string()]).unwrap_or_default(),
        ..d
    };
    opts.validate()?;
    Ok(opts)
}

fn print_piece(piece: &str) {
    let mut out = std::io::stdout();
    let _ = out.write_all(piece.as_bytes());
    let _ = out.flush();
}

fn report(load_ms: f64, c: &Completion, describe: &str) {
    eprintln!(
        "load {load_ms:.0} ms | prefill {} tokens {:.1} tok/s ({} cached) | decode {} tokens {:.1} tok/s | backend {describe} | finish {:?}",
        c.usage.prompt_tokens,
        c.usage.prefill_tok_s,
        c.usage.cached_tokens,
        c.usage.completion_tokens,
        c.usage.decode_tok_s,
        c.finish_reason,
    );
}

fn messages_with_system(a: &Args) -> Vec<ChatMessage> {
    a.str("system").map(|s| vec![ChatMessage { role: "system".into(), content: s.into() }]).unwrap_or_default()
}

pub fn run(a: &Args) -> CliResult {
    options(a)?;
    a.required("prompt")?;
    if a.str("system").is_some() && !a.has("chat") {
        return Err("--system needs --chat".to_string().into());
    }
    with_model(a, Command::Run)
}

fn run_on<B: Backend>(a: &Args, mut engine: Engine<B>, load_ms: f64, describe: &str) -> CliResult {
    let options = options(a)?;
    let prompt = a.required("prompt")?.to_string();
    let cancel = CancelToken::new();
    let c = if a.has("chat") {
        let mut messages = messages_with_system(a);
        messages.push(ChatMessage { role: "user".into(), content: prompt });
        pollster::block_on(engine.chat_stream(&ChatRequest { messages, options }, &cancel, print_piece))?
    } else {
        let req = CompletionRequest { prompt: Prompt::Text(prompt), add_special: !a.has("no-bos"), options };
        pollster::block_on(engine.complete_stream(&req, &cancel, print_piece))?
    };
    println!();
    report(load_ms, &c, describe);
    Ok(())
}

pub fn chat(a: &Args) -> CliResult {
    options(a)?;
    with_model(a, Command::Chat)
}

fn chat_on<B: Backend>(a: &Args, mut engine: Engine<B>, describe: &str) -> CliResult {
    let options = options(a)?;
    eprintln!(
        "{} ({} parameters, chat template: {}). /reset starts over, /exit quits.",
        engine.info().name.as_deref().unwrap_or(&engine.info().architecture),
        engine.info().parameter_count,
        engine.info().chat_template
    );
    let mut messages = messages_with_system(a);
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).map_err(pocketllm::Error::Io)? == 0 {
            break;
        }
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                messages = messages_with_system(a);
                engine.reset();
                eprintln!("(conversation cleared)");
                continue;
            }
            text => messages.push(ChatMessage { role: "user".into(), content: text.to_string() }),
        }
        let req = ChatRequest { messages: messages.clone(), options: options.clone() };
        match pollster::block_on(engine.chat_stream(&req, &CancelToken::new(), print_piece)) {
            Ok(c) => {
                println!();
                report(0.0, &c, describe);
                messages.push(ChatMessage { role: "assistant".into(), content: c.text });
            }
            Err(e) => {
                // The conversation stays usable: drop the message that failed.
                messages.pop();
                eprintln!("error [{}]: {e}", e.code());
            }
        }
    }
    Ok(())
}

pub fn bench(a: &Args) -> CliResult {
    let n_prompt: usize = a.num("prompt-tokens", 128)?;
    let n_gen: usize = a.num("gen-tokens", 64)?;
    if n_prompt == 0 || n_gen == 0 {
        return Err("--prompt-tokens and --gen-tokens must be positive".to_string().into());
    }
    with_model(a, Command::Bench)
}

fn bench_on<B: Backend>(a: &Args, mut engine: Engine<B>, load_ms: f64, describe: &str) -> CliResult {
    let n_prompt: usize = a.num("prompt-tokens", 128)?;
    let n_gen: usize = a.num("gen-tokens", 64)?;
    let temperature: f32 = a.num("temperature", 0.0)?;
    let top_k: usize = a.num("top-k", 40)?;
    // A fixed, spread-out prompt: the content does not matter for speed, only the length.
    let n_vocab = engine.info().vocab_size as u64;
    let prompt: Vec<u32> = (0..n_prompt as u64).map(|i| ((i * 7919 + 13) % n_vocab) as u32).collect();
    let request = |max_tokens| CompletionRequest {
        prompt: Prompt::Tokens(prompt.clone()),
        add_special: false,
        options: GenerationOptions { max_tokens, temperature, top_k, seed: 0, ignore_eos: true, ..Default::default() },
    };
    // A first run of the prompt and one token warms up (the GPU prepares its pipelines and
    // bind groups at the first step) and measures what the prompt alone costs.
    let before = engine.backend().counters();
    pollster::block_on(engine.complete(&request(1)))?;
    let prompt_work = engine.backend().counters().since(&before);
    engine.reset();
    let before = engine.backend().counters();
    let c = pollster::block_on(engine.complete(&request(n_gen)))?;
    let all = engine.backend().counters().since(&before);
    let decoded = c.usage.completion_tokens.saturating_sub(1).max(1) as f64;
    let per_token = |total: u64, prompt: u64| ((total - prompt) as f64 / decoded * 10.0).round() / 10.0;
    let out = json!({
        "model": a.required("model")?,
        "backend": describe,
        "kv_cache": engine.info().kv_cache,
        "kv_cache_bytes": engine.info().kv_cache_bytes,
        "context_length": engine.info().context_length,
        "temperature": temperature,
        "top_k": top_k,
        "load_ms": (load_ms * 10.0).round() / 10.0,
        "prompt_tokens": n_prompt,
        "gen_tokens": c.usage.completion_tokens,
        "prefill_tok_s": (c.usage.prefill_tok_s * 100.0).round() / 100.0,
        "decode_tok_s": (c.usage.decode_tok_s * 100.0).round() / 100.0,
        "prefill": { "dispatches": prompt_work.dispatches, "submits": prompt_work.submits },
        "per_decode_token": {
            "dispatches": per_token(all.dispatches, prompt_work.dispatches),
            "submits": per_token(all.submits, prompt_work.submits),
            "bytes_written": per_token(all.bytes_written, prompt_work.bytes_written),
            "bytes_read": per_token(all.bytes_read, prompt_work.bytes_read),
        },
    });
    println!("{out}");
    Ok(())
}
