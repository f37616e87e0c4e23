//! `Engine`: the one surface the CLI uses and the wasm package will wrap. It owns a loaded
//! model, its tokenizer and chat template, and the tokens whose keys and values sit in the KV
//! cache, so a new request (a new chat turn) only processes what differs from the last one.

mod generate;
mod load;
pub mod request;
mod stop;
mod stream;

pub use load::{EngineLoader, LoadPhase, LoadProgress, MemoryLimit};
pub use request::{ChatRequest, Completion, CompletionRequest, FinishReason, GenerationOptions, Prompt, Usage};
pub use stop::StopMatcher;
pub use stream::StreamingLoader;

use crate::backend::{Backend, KvType};
use crate::chat::{ChatMessage, ChatTemplate, TemplateSource};
use crate::model::Model;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What to do when a chat no longer fits the context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContextOverflow {
    /// A typed `context_full` error.
    #[default]
    Error,
    /// Drop the oldest turns (never the system prompt or the last message) until it fits.
    DropOldestTurns,
}

#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// KV cache length; 0 = min(the model's training context, 4096).
    pub context_length: usize,
    /// Tokens per prompt-processing batch.
    pub batch_size: usize,
    pub context_overflow: ContextOverflow,
    /// The KV cache's element type; `None`: the backend's choice (f16 on GPUs with `shader-f16`).
    pub kv_type: Option<KvType>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { context_length: 0, batch_size: 256, context_overflow: ContextOverflow::Error, kv_type: None }
    }
}

/// Cancels a running generation from outside (another thread, a UI button, a stream consumer).
/// The generation stops before its next token and returns `finish_reason: cancelled`.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A future a host awaits between tokens (see `complete_stream_yielding`).
pub type YieldFuture = Pin<Box<dyn Future<Output = ()>>>;

fn no_yield() -> YieldFuture {
    Box::pin(std::future::ready(()))
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub architecture: String,
    pub name: Option<String>,
    pub parameter_count: u64,
    pub vocab_size: usize,
    /// The KV cache length this engine was loaded with.
    pub context_length: usize,
    pub training_context_length: usize,
    /// "gguf", or the name of the fallback template used because the file has none.
    pub chat_template: String,
    pub backend: String,
    /// The KV cache's element type: "f32" or "f16".
    pub kv_cache: String,
    /// The KV cache's size on its backend.
    pub kv_cache_bytes: u64,
}

pub struct Engine<B: Backend> {
    model: Model<B>,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    info: ModelInfo,
    options: EngineOptions,
    /// Tokens at positions 0.. of the KV cache.
    cached: Vec<u32>,
}

impl<B: Backend> Engine<B> {
    fn new(
        model: Model<B>,
        tokenizer: Tokenizer,
        template: (ChatTemplate, TemplateSource),
        mut info: ModelInfo,
        options: EngineOptions,
    ) -> Self {
        info.chat_template = match template.1 {
            TemplateSource::Gguf => "gguf".to_string(),
            TemplateSource::Fallback(name) => name.to_string(),
        };
        info.context_length = model.n_ctx();
        info.backend = model.backend.name().to_string();
        info.kv_cache = model.kv_type().name().to_string();
        info.kv_cache_bytes = model.kv_cache_bytes();
        Engine { model, tokenizer, template: template.0, info, options, cached: Vec::new() }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn backend(&self) -> &B {
        &self.model.backend
    }

    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        self.tokenizer.encode(text, add_special, parse_special)
    }

    pub fn detokenize(&self, tokens: &[u32]) -> Result<String> {
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= self.tokenizer.n_vocab()) {
            return Err(Error::TokenOutOfRange { id, n_vocab: self.tokenizer.n_vocab() });
        }
        Ok(self.tokenizer.decode(tokens, false))
    }

    /// Forgets the cached conversation: the next request is processed from scratch.
    pub fn reset(&mut self) {
        self.cached.clear();
    }

    /// Tokens currently held in the KV cache.
    pub fn cached_tokens(&self) -> &[u32] {
        &self.cached
    }

    pub async fn complete(&mut self, req: &CompletionRequest) -> Result<Completion> {
        self.complete_stream(req, &CancelToken::new(), |_| {}).await
    }

    /// Generates from a prompt, passing each piece of new text to `on_delta` as it is decided.
    pub async fn complete_stream(
        &mut self,
        req: &CompletionRequest,
        cancel: &CancelToken,
        on_delta: impl FnMut(&str),
    ) -> Result<Completion> {
        self.complete_stream_yielding(req, cancel, on_delta, &mut no_yield).await
    }

    /// `complete_stream` that awaits `yield_now()` after every token. A host whose cancel
    /// requests arrive as events on the same thread (a browser Worker's messages) returns a
    /// future that lets them run, so a cancel takes effect before the next token.
    pub async fn complete_stream_yielding(
        &mut self,
        req: &CompletionRequest,
        cancel: &CancelToken,
        mut on_delta: impl FnMut(&str),
        yield_now: &mut dyn FnMut() -> YieldFuture,
    ) -> Result<Completion> {
        req.options.validate()?;
        let prompt = match &req.prompt {
            Prompt::Text(t) => self.tokenizer.encode(t, req.add_special, true),
            Prompt::Tokens(t) => t.clone(),
        };
        self.generate(&prompt, &req.options, cancel, &mut on_delta, yield_now).await
    }

    pub async fn chat(&mut self, req: &ChatRequest) -> Result<Completion> {
        self.chat_stream(req, &CancelToken::new(), |_| {}).await
    }

    /// A chat turn: renders the conversation with the model's template and generates the reply.
    pub async fn chat_stream(
        &mut self,
        req: &ChatRequest,
        cancel: &CancelToken,
        on_delta: impl FnMut(&str),
    ) -> Result<Completion> {
        self.chat_stream_yielding(req, cancel, on_delta, &mut no_yield).await
    }

    /// `chat_stream` that awaits `yield_now()` after every token (see `complete_stream_yielding`).
    pub async fn chat_stream_yielding(
        &mut self,
        req: &ChatRequest,
        cancel: &CancelToken,
        mut on_delta: impl FnMut(&str),
        yield_now: &mut dyn FnMut() -> YieldFuture,
    ) -> Result<Completion> {
        req.options.validate()?;
        let prompt = self.chat_prompt(&req.messages)?;
        self.generate(&prompt, &req.options, cancel, &mut on_delta, yield_now).await
    }

    /// The tokens of a rendered conversation, dropping old turns if the options allow and it
    /// would not otherwise leave room for one generated token.
    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let mut messages = messages.to_vec();
        loop {
            let tokens = self.render_tokens(&messages)?;
            if tokens.len() < self.model.n_ctx() {
                return Ok(tokens);
            }
            let droppable = messages.iter().position(|m| m.role != "system").filter(|&i| i + 1 < messages.len());
            match (self.options.context_overflow, droppable) {
                (ContextOverflow::DropOldestTurns, Some(i)) => {
                    messages.remove(i);
                }
                _ => return Err(Error::ContextFull { needed: tokens.len() + 1, context: self.model.n_ctx() }),
            }
        }
    }

    fn render_tokens(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let text = self.template.render(messages, true)?;
        // Templates usually write the BOS token themselves; add it only when they do not.
        let bos_text = self.tokenizer.bos().and_then(|b| self.tokenizer.token_text(b)).unwrap_or("");
        let add_bos = self.tokenizer.add_bos() && (bos_text.is_empty() || !text.starts_with(bos_text));
        Ok(self.tokenizer.encode(&text, add_bos, true))
    }
}
