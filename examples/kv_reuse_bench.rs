//! Multi-turn KV reuse, measured: the time of a chat turn whose conversation prefix is already
//! in the cache vs the same turn after `reset()` (the whole conversation processed again).
//! `cargo run --release --example kv_reuse_bench -- MODEL.gguf [turns]`

use pocketllm::backend::cpu::CpuBackend;
use pocketllm::chat::ChatMessage;
use pocketllm::engine::{ChatRequest, Engine, EngineOptions, GenerationOptions};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: kv_reuse_bench MODEL.gguf [turns]");
    let turns: usize = args.get(2).map_or(6, |t| t.parse().unwrap());
    let bytes = std::fs::read(path).unwrap();
    let mut engine = Engine::load_bytes(&bytes, CpuBackend::new(1).unwrap(), EngineOptions::default()).unwrap();
    let options = GenerationOptions { max_tokens: 16, temperature: 0.0, ignore_eos: true, ..Default::default() };
    let mut messages = vec![ChatMessage { role: "system".into(), content: "You are a helpful assistant.".into() }];
    for turn in 0..turns {
        messages.push(ChatMessage {
            role: "user".into(),
            content: format!("Tell me a short fact number {turn} about the sea."),
        });
        let req = ChatRequest { messages: messages.clone(), options: options.clone() };
        let t = Instant::now();
        let reused = pollster::block_on(engine.chat(&req)).unwrap();
        let with_cache = t.elapsed().as_secs_f64() * 1e3;
        engine.reset();
        let t = Instant::now();
        let fresh = pollster::block_on(engine.chat(&req)).unwrap();
        let without = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(reused.tokens, fresh.tokens, "reuse must not change the output");
        println!(
            "turn {turn}: prompt {} tokens ({} cached): {with_cache:.1} ms with reuse, {without:.1} ms from scratch ({:.2}x)",
            reused.usage.prompt_tokens,
            reused.usage.cached_tokens,
            without / with_cache
        );
        messages.push(ChatMessage { role: "assistant".into(), content: reused.text });
    }
}
