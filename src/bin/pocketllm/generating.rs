//! The generating commands, all through `Engine`: `run`, `chat` (interactive) and `bench`.

use crate::args::Args;
use crate::{CliError, CliResult, cpu_backend, read_model};
use pocketllm::backend::cpu::CpuBackend;
use pocketllm::chat::ChatMessage;
use pocketllm::engine::{
    CancelToken, ChatRequest, Completion, CompletionRequest, Engine, EngineOptions, GenerationOptions, Prompt,
};
use serde_json::json;
use std::io::{BufRead, Write};
use std::time::Instant;

fn load(a: &Args) -> Result<(Engine<CpuBackend>, f64), CliError> {
    let l = read_model(a)?;
    let t0 = Instant::now();
    let opts = EngineOptions { context_length: a.num("ctx", 0)?, ..EngineOptions::default() };
    let engine = Engine::load_bytes(&l.bytes, cpu_backend(a)?, opts)?;
    Ok((engine, t0.elapsed().as_secs_f64() * 1e3))
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

fn report(load_ms: f64, c: &Completion, engine: &Engine<CpuBackend>) {
    eprintln!(
        "load {load_ms:.0} ms | prefill {} tokens {:.1} tok/s ({} cached) | decode {} tokens {:.1} tok/s | backend {} ({} threads) | finish {:?}",
        c.usage.prompt_tokens,
        c.usage.prefill_tok_s,
        c.usage.cached_tokens,
        c.usage.completion_tokens,
        c.usage.decode_tok_s,
        engine.info().backend,
        engine.backend().threads(),
        c.finish_reason,
    );
}

fn messages_with_system(a: &Args) -> Vec<ChatMessage> {
    a.str("system").map(|s| vec![ChatMessage { role: "system".into(), content: s.into() }]).unwrap_or_default()
}

pub fn run(a: &Args) -> CliResult {
    let options = options(a)?;
    let prompt = a.required("prompt")?.to_string();
    if a.str("system").is_some() && !a.has("chat") {
        return Err("--system needs --chat".to_string().into());
    }
    let (mut engine, load_ms) = load(a)?;
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
    report(load_ms, &c, &engine);
    Ok(())
}

pub fn chat(a: &Args) -> CliResult {
    let options = options(a)?;
    let (mut engine, _) = load(a)?;
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
                report(0.0, &c, &engine);
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
    let (mut engine, load_ms) = load(a)?;
    // A fixed, spread-out prompt: the content does not matter for speed, only the length.
    let n_vocab = engine.info().vocab_size as u64;
    let prompt: Vec<u32> = (0..n_prompt as u64).map(|i| ((i * 7919 + 13) % n_vocab) as u32).collect();
    let options = GenerationOptions { max_tokens: n_gen, temperature: 0.0, ignore_eos: true, ..Default::default() };
    let req = CompletionRequest { prompt: Prompt::Tokens(prompt), add_special: false, options };
    let c = pollster::block_on(engine.complete(&req))?;
    let out = json!({
        "model": a.required("model")?,
        "backend": engine.info().backend,
        "threads": engine.backend().threads(),
        "load_ms": (load_ms * 10.0).round() / 10.0,
        "prompt_tokens": n_prompt,
        "gen_tokens": c.usage.completion_tokens,
        "prefill_tok_s": (c.usage.prefill_tok_s * 100.0).round() / 100.0,
        "decode_tok_s": (c.usage.decode_tok_s * 100.0).round() / 100.0,
    });
    println!("{out}");
    Ok(())
}
