//! The Engine surface: streaming, stop strings, multi-turn KV reuse, cancellation, context
//! overflow, chunked loading, and typed errors for bad requests.

mod common;

use pocketllm::Error;
use pocketllm::backend::cpu::CpuBackend;
use pocketllm::chat::ChatMessage;
use pocketllm::engine::{
    CancelToken, ChatRequest, CompletionRequest, ContextOverflow, Engine, EngineOptions, FinishReason,
    GenerationOptions, LoadPhase, Prompt,
};
use pocketllm::quant::GgmlType;
use pocketllm::synth::{SynthArch, synth_model};

const STORIES: &str = "models/stories260k/stories260K-F32.gguf";

fn engine(bytes: &[u8], opts: EngineOptions) -> Engine<CpuBackend> {
    Engine::load_bytes(bytes, CpuBackend::new(1).unwrap(), opts).unwrap()
}

fn greedy(max_tokens: usize) -> GenerationOptions {
    GenerationOptions { max_tokens, temperature: 0.0, ..Default::default() }
}

fn text_req(prompt: &str, options: GenerationOptions) -> CompletionRequest {
    CompletionRequest { prompt: Prompt::Text(prompt.into()), add_special: true, options }
}

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage { role: role.into(), content: content.into() }
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

#[test]
fn streamed_deltas_add_up_to_the_golden_story() {
    let Some(bytes) = common::read_fixture(STORIES) else { return };
    let golden: serde_json::Value =
        serde_json::from_slice(&common::read_fixture("goldens/stories260K-F32.json").unwrap()).unwrap();
    let mut e = engine(&bytes, EngineOptions::default());
    let mut deltas = Vec::new();
    let c = block(e.complete_stream(&text_req("Once upon a time", greedy(64)), &CancelToken::new(), |d| {
        deltas.push(d.to_string())
    }))
    .unwrap();
    assert_eq!(c.text, golden["prompt"]["greedy_text"].as_str().unwrap());
    assert_eq!(deltas.concat(), c.text);
    assert!(deltas.len() > 30, "text should arrive piece by piece");
    assert_eq!((c.finish_reason, c.usage.prompt_tokens, c.usage.completion_tokens), (FinishReason::Length, 5, 64));
    assert!(c.usage.prefill_tok_s > 0.0 && c.usage.decode_tok_s > 0.0);
}

/// A stop string made of the text of three consecutive generated tokens is found across the
/// token boundaries and never emitted, not even partly.
#[test]
fn stop_string_across_three_tokens() {
    let Some(bytes) = common::read_fixture(STORIES) else { return };
    let mut e = engine(&bytes, EngineOptions::default());
    let free = block(e.complete(&text_req("Once upon a time", greedy(16)))).unwrap();
    let piece = |id: u32| String::from_utf8(e.tokenizer().token_to_piece(id, false)).unwrap();
    let before: String = free.tokens[..6].iter().map(|&t| piece(t)).collect();
    let stop: String = free.tokens[6..9].iter().map(|&t| piece(t)).collect();
    assert!(
        free.text.starts_with(&format!("{before}{stop}")) && !before.contains(&stop),
        "{stop:?} in {:?}",
        free.text
    );
    let mut deltas = String::new();
    let opts = GenerationOptions { stop: vec![stop.clone()], ..greedy(64) };
    let c = block(e.complete_stream(&text_req("Once upon a time", opts), &CancelToken::new(), |d| deltas.push_str(d)))
        .unwrap();
    assert_eq!(c.text, before, "stop {stop:?}");
    assert_eq!(deltas, c.text);
    assert_eq!(c.finish_reason, FinishReason::Stop);
}

#[test]
fn cancel_mid_stream_then_a_new_request_works() {
    let Some(bytes) = common::read_fixture(STORIES) else { return };
    let mut e = engine(&bytes, EngineOptions::default());
    let cancel = CancelToken::new();
    let mut n = 0;
    let c = block(e.complete_stream(&text_req("Once upon a time", greedy(64)), &cancel, |_| {
        n += 1;
        if n == 3 {
            cancel.cancel();
        }
    }))
    .unwrap();
    assert_eq!(c.finish_reason, FinishReason::Cancelled);
    assert_eq!(c.usage.completion_tokens, 3, "stops within one token of the cancel");
    // A cancel from another thread, while the engine is generating.
    let cancel = CancelToken::new();
    let remote = cancel.clone();
    let t = std::thread::spawn(move || remote.cancel());
    t.join().unwrap();
    let c = block(e.complete_stream(&text_req("Once upon a time", greedy(64)), &cancel, |_| {})).unwrap();
    assert_eq!((c.finish_reason, c.usage.completion_tokens), (FinishReason::Cancelled, 0));
    // The engine is usable at once and gives what a fresh one gives.
    let again = block(e.complete(&text_req("Once upon a time", greedy(20)))).unwrap();
    let fresh =
        block(engine(&bytes, EngineOptions::default()).complete(&text_req("Once upon a time", greedy(20)))).unwrap();
    assert_eq!(again.tokens, fresh.tokens);
    assert_eq!(again.finish_reason, FinishReason::Length);
}

/// A second chat turn reuses the first turn's cache and produces exactly what a fresh engine
/// produces for the whole conversation (the CPU backend computes each position independently of
/// how the prompt was batched, so reuse changes no logit).
#[test]
fn multi_turn_reuses_the_cache_with_identical_results() {
    let bytes = synth_model(SynthArch::Qwen2, GgmlType::Q8_0, 11);
    let opts = EngineOptions { context_length: 256, ..EngineOptions::default() };
    let mut e = engine(&bytes, opts.clone());
    let mut messages = vec![msg("system", "You are terse."), msg("user", "Hello there")];
    let first = block(e.chat(&ChatRequest { messages: messages.clone(), options: greedy(12) })).unwrap();
    assert_eq!(first.usage.cached_tokens, 0);
    messages.push(msg("assistant", &first.text));
    messages.push(msg("user", "And then?"));
    let second = block(e.chat(&ChatRequest { messages: messages.clone(), options: greedy(12) })).unwrap();
    assert!(second.usage.cached_tokens > first.usage.prompt_tokens / 2, "{:?}", second.usage);
    let fresh = block(engine(&bytes, opts).chat(&ChatRequest { messages, options: greedy(12) })).unwrap();
    assert_eq!(fresh.usage.cached_tokens, 0);
    assert_eq!(second.tokens, fresh.tokens);
    assert_eq!(second.text, fresh.text);
    // Asking the same thing again reuses all but one token.
    let e_cached = e.cached_tokens().len();
    assert!(e_cached >= second.usage.prompt_tokens);
}

#[test]
fn context_overflow_errors_or_drops_oldest_turns() {
    let bytes = synth_model(SynthArch::Llama, GgmlType::Q4_0, 5);
    let long = "a long message about many things ".repeat(6);
    let mut messages = vec![msg("system", "sys")];
    for i in 0..6 {
        messages.push(msg("user", &format!("{i} {long}")));
        messages.push(msg("assistant", "ok"));
    }
    messages.push(msg("user", "last question"));
    let opts = EngineOptions { context_length: 128, ..EngineOptions::default() };
    let mut strict = engine(&bytes, opts.clone());
    let err = block(strict.chat(&ChatRequest { messages: messages.clone(), options: greedy(4) })).unwrap_err();
    assert!(matches!(err, Error::ContextFull { context: 128, .. }), "{err}");
    assert_eq!(err.code(), "context_full");
    // The engine still works after the error.
    assert!(block(strict.chat(&ChatRequest { messages: vec![msg("user", "hi")], options: greedy(4) })).is_ok());

    let mut lenient = engine(&bytes, EngineOptions { context_overflow: ContextOverflow::DropOldestTurns, ..opts });
    let c = block(lenient.chat(&ChatRequest { messages: messages.clone(), options: greedy(4) })).unwrap();
    assert!(c.usage.prompt_tokens < 128, "{:?}", c.usage);
    // Generation that reaches the end of the context stops with `length`.
    let filler: Vec<u32> = (0..120).map(|i| 3 + i % 200).collect();
    let req = CompletionRequest { prompt: Prompt::Tokens(filler), add_special: false, options: greedy(100) };
    let c = block(lenient.complete(&req)).unwrap();
    assert_eq!(c.finish_reason, FinishReason::Length);
    // 8 free slots after the 120-token prompt, plus the token sampled from the last slot's logits.
    assert_eq!(c.usage.completion_tokens, 9);
}

#[test]
fn bad_requests_are_typed_errors() {
    let bytes = synth_model(SynthArch::Qwen3, GgmlType::Q8_0, 2);
    let mut e = engine(&bytes, EngineOptions { context_length: 64, ..EngineOptions::default() });
    let chat = |messages: Vec<ChatMessage>, options: GenerationOptions| ChatRequest { messages, options };
    let cases: Vec<(pocketllm::Result<_>, &str)> = vec![
        (block(e.chat(&chat(vec![], greedy(4)))), "invalid_request"),
        (block(e.chat(&chat(vec![msg("wizard", "hi")], greedy(4)))), "invalid_request"),
        (
            block(e.chat(&chat(vec![msg("user", "hi")], GenerationOptions { temperature: -1.0, ..greedy(4) }))),
            "invalid_argument",
        ),
        (
            block(e.chat(&chat(vec![msg("user", "hi")], GenerationOptions { top_p: 1.5, ..greedy(4) }))),
            "invalid_argument",
        ),
        (
            block(e.chat(&chat(vec![msg("user", "hi")], GenerationOptions { max_tokens: 0, ..greedy(4) }))),
            "invalid_argument",
        ),
        (
            block(e.chat(&chat(vec![msg("user", "hi")], GenerationOptions { stop: vec!["".into()], ..greedy(4) }))),
            "invalid_argument",
        ),
        (block(e.complete(&text_req(&"word ".repeat(100), greedy(4)))), "context_full"),
        (
            block(e.complete(&CompletionRequest {
                prompt: Prompt::Tokens(vec![]),
                add_special: false,
                options: greedy(4),
            })),
            "invalid_argument",
        ),
        (
            block(e.complete(&CompletionRequest {
                prompt: Prompt::Tokens(vec![1, 99999]),
                add_special: false,
                options: greedy(4),
            })),
            "invalid_argument",
        ),
    ];
    for (i, (r, code)) in cases.into_iter().enumerate() {
        let err = r.err().unwrap_or_else(|| panic!("case {i} should fail"));
        assert_eq!(err.code(), code, "case {i}: {err}");
    }
    assert!(block(e.chat(&chat(vec![msg("user", "hi")], greedy(4)))).is_ok());
}

#[test]
fn chunked_loading_reports_progress_and_equals_whole_file_loading() {
    let bytes = synth_model(SynthArch::Llama3, GgmlType::Q4_K, 9);
    let mut events = Vec::new();
    let chunks = bytes.chunks(10_000).map(|c| Ok::<_, Error>(c.to_vec()));
    let mut streamed = Engine::load_chunks(
        chunks,
        Some(bytes.len() as u64),
        CpuBackend::new(1).unwrap(),
        EngineOptions::default(),
        |p| events.push(p.clone()),
    )
    .unwrap();
    let reads: Vec<_> = events.iter().filter(|p| p.phase == LoadPhase::Read).collect();
    assert_eq!(reads.len(), bytes.len().div_ceil(10_000));
    assert!(reads.windows(2).all(|w| w[0].loaded < w[1].loaded));
    assert_eq!(reads.last().unwrap().loaded, bytes.len() as u64);
    let uploads: Vec<_> = events.iter().filter(|p| p.phase == LoadPhase::Upload).collect();
    // Fused projections (q/k/v, gate/up) count as their tensors at once, so steps may exceed 1.
    assert!(uploads.len() > 10 && uploads.windows(2).all(|w| w[0].loaded < w[1].loaded));
    assert_eq!(uploads.last().unwrap().loaded, uploads.last().unwrap().total.unwrap());
    assert_eq!(events.last().unwrap().phase, LoadPhase::Upload);
    let mut whole = engine(&bytes, EngineOptions::default());
    let req =
        CompletionRequest { prompt: Prompt::Tokens(vec![1, 40, 41, 300]), add_special: false, options: greedy(10) };
    assert_eq!(block(streamed.complete(&req)).unwrap().tokens, block(whole.complete(&req)).unwrap().tokens);

    // A stream that ends early is an error, not a half-loaded engine.
    let cut = bytes[..bytes.len() * 2 / 3].chunks(10_000).map(|c| Ok::<_, Error>(c.to_vec()));
    let err =
        Engine::load_chunks(cut, None, CpuBackend::new(1).unwrap(), EngineOptions::default(), |_| {}).err().unwrap();
    assert_eq!(err.code(), "bad_gguf", "{err}");
}

/// Requests deserialize from OpenAI-shaped JSON (what the JS package will pass through).
#[test]
fn openai_shaped_json_requests() {
    let chat: ChatRequest = serde_json::from_str(
        r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"temperature":0,"stop":"\n","stream":true,"seed":7}"#,
    )
    .unwrap();
    assert_eq!((chat.options.max_tokens, chat.options.seed, chat.options.stream), (5, 7, true));
    assert_eq!(chat.options.stop, vec!["\n".to_string()]);
    assert_eq!(chat.options.top_k, GenerationOptions::default().top_k, "absent fields take defaults");
    let text: CompletionRequest = serde_json::from_str(r#"{"prompt":"Once","stop":["a","b"]}"#).unwrap();
    assert_eq!(text.prompt, Prompt::Text("Once".into()));
    assert!(text.add_special);
    assert_eq!(text.options.stop.len(), 2);
    let ids: CompletionRequest = serde_json::from_str(r#"{"prompt":[1,2,3],"ignore_eos":true}"#).unwrap();
    assert_eq!(ids.prompt, Prompt::Tokens(vec![1, 2, 3]));
    assert!(ids.options.ignore_eos);
    let c = pocketllm::engine::Completion {
        text: "x".into(),
        tokens: vec![1],
        finish_reason: FinishReason::Cancelled,
        usage: Default::default(),
    };
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["finish_reason"], "cancelled");
    assert!(v["usage"]["prompt_tokens"].is_number() && v["usage"]["decode_tok_s"].is_number());
}

/// The yield hook runs once per decoded token, and a cancel made while the host is yielded (as
/// a browser Worker's cancel message is handled) stops generation before the next token.
#[test]
fn yield_hook_runs_per_token_and_a_cancel_while_yielded_stops_at_once() {
    let Some(bytes) = common::read_fixture(STORIES) else { return };
    let mut e = engine(&bytes, EngineOptions::default());
    let cancel = CancelToken::new();
    let remote = cancel.clone();
    let mut yields = 0;
    let mut hook = || -> pocketllm::engine::YieldFuture {
        yields += 1;
        if yields == 5 {
            remote.cancel();
        }
        Box::pin(std::future::ready(()))
    };
    let req = text_req("Once upon a time", greedy(64));
    let c = block(e.complete_stream_yielding(&req, &cancel, |_| {}, &mut hook)).unwrap();
    assert_eq!(c.finish_reason, FinishReason::Cancelled);
    assert_eq!(c.usage.completion_tokens, 5);
    let mut count = 0;
    let mut hook = || -> pocketllm::engine::YieldFuture {
        count += 1;
        Box::pin(std::future::ready(()))
    };
    let c = block(e.complete_stream_yielding(&req, &CancelToken::new(), |_| {}, &mut hook)).unwrap();
    let fresh = block(engine(&bytes, EngineOptions::default()).complete(&req)).unwrap();
    assert_eq!((c.tokens.clone(), c.text.clone()), (fresh.tokens, fresh.text));
    assert_eq!(count, c.usage.completion_tokens - 1, "one yield after each token that is fed back");
}

#[test]
fn a_model_over_the_memory_limit_is_refused_as_soon_as_its_header_arrives() {
    use pocketllm::engine::{EngineLoader, MemoryLimit};
    let bytes = synth_model(SynthArch::Qwen2, GgmlType::Q8_0, 4);
    let gguf = pocketllm::gguf::Gguf::parse(&bytes).unwrap();
    let needs = pocketllm::model::MemoryNeeds::of(&gguf, &Default::default()).unwrap();
    let weights: u64 = gguf.tensors.iter().map(|t| t.n_bytes).sum();
    assert_eq!(needs.weights, weights);
    assert!(needs.peak() > 2 * weights && needs.kv_cache > 0 && needs.activations > 0, "{needs:?}");
    let header_len = gguf.data_offset as usize;
    // One byte short: refused by the push that completes the header, before any tensor byte.
    let limit = MemoryLimit { max_bytes: needs.peak() - 1, context_length: 0 };
    let mut loader = EngineLoader::with_limit(Some(bytes.len() as u64), limit);
    loader.push(&bytes[..header_len / 2]).unwrap();
    let e = loader.push(&bytes[header_len / 2..header_len + 64]).unwrap_err();
    assert_eq!(e.code(), "model_too_large", "{e}");
    assert!(e.to_string().contains("MiB allowed"), "{e}");
    // Weights streamed onto a GPU are not held in host memory: the same budget less them does.
    let mut off_host =
        EngineLoader::with_limit(None, MemoryLimit { max_bytes: needs.peak() - 2 * needs.weights, context_length: 0 });
    off_host.weights_off_host();
    off_host.push(&bytes).unwrap();
    // A longer context needs a bigger cache: the same budget refuses it, a larger one does not.
    let limit = MemoryLimit { max_bytes: needs.peak(), context_length: 0 };
    let mut loader = EngineLoader::with_limit(Some(bytes.len() as u64), limit);
    for chunk in bytes.chunks(4096) {
        loader.push(chunk).unwrap();
    }
    let engine = loader.finish(CpuBackend::new(1).unwrap(), EngineOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(engine.info().architecture, "qwen2");
    let bigger = MemoryLimit { max_bytes: needs.peak(), context_length: 4 * engine.info().context_length.max(1) };
    let e = EngineLoader::with_limit(None, bigger).push(&bytes).err().map(|e| e.code());
    assert_eq!(e, Some("model_too_large"));
}

#[test]
fn streaming_onto_the_backend_equals_loading_the_whole_file() {
    use pocketllm::engine::{EngineLoader, StreamingLoader};
    for (arch, ty) in
        [(SynthArch::Llama3, GgmlType::Q4_K), (SynthArch::Qwen2, GgmlType::Q8_0), (SynthArch::Qwen3, GgmlType::F16)]
    {
        let bytes = synth_model(arch, ty, 12);
        let mut streamed =
            StreamingLoader::new(EngineLoader::new(Some(bytes.len() as u64)), CpuBackend::new(1).unwrap());
        for chunk in bytes.chunks(4093) {
            streamed.push(chunk).unwrap();
        }
        let mut uploads = Vec::new();
        let mut streamed = streamed.finish(EngineOptions::default(), &mut |p| uploads.push(p.loaded)).unwrap();
        assert_eq!(uploads.last().copied(), Some(pocketllm::gguf::Gguf::parse(&bytes).unwrap().tensors.len() as u64));
        let mut whole = engine(&bytes, EngineOptions::default());
        let req =
            CompletionRequest { prompt: Prompt::Tokens(vec![1, 40, 41, 300]), add_special: false, options: greedy(12) };
        let name = arch.name();
        assert_eq!(
            block(streamed.complete(&req)).unwrap().tokens,
            block(whole.complete(&req)).unwrap().tokens,
            "{name} {ty}"
        );
        // A stream that stops short is an error, not a model with holes.
        let mut cut = StreamingLoader::new(EngineLoader::new(Some(bytes.len() as u64)), CpuBackend::new(1).unwrap());
        cut.push(&bytes[..bytes.len() - 100]).unwrap();
        assert!(cut.finish(EngineOptions::default(), &mut |_| {}).is_err(), "{name} {ty}");
    }
}
