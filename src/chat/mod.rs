//! Chat templates: turning a conversation into the prompt text a model was trained on.
//!
//! GGUF files carry the Hugging Face Jinja template in `tokenizer.chat_template`. It is rendered
//! with `minijinja`, set up to behave like transformers' jinja2 environment (`src/chat/env.rs` has the
//! exact list), and checked byte for byte against Python jinja2 on real templates
//! (`tests/chat_template.rs`). Models without a template get a built-in one chosen from the
//! architecture and vocabulary ([`TemplateSource::Fallback`]).
//!
//! ```
//! use pocketllm::chat::{ChatMessage, ChatTemplate};
//! let t = ChatTemplate::fallback("chatml", "", "<|im_end|>").unwrap();
//! let prompt = t.render(&[ChatMessage::new("user", "Hi!")], true).unwrap();
//! assert_eq!(prompt, "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
//! ```
//!
//! Rendering is sandboxed: no file or network access (no template loader: `include`/`import`
//! fail), output capped at [`RenderLimits::max_output_bytes`], and work and memory capped by
//! minijinja's fuel ([`RenderLimits::fuel`]). Every failure is a [`ChatError`]; nothing panics.

mod env;
mod fallback;
mod guard;
mod json;
mod time;

use std::io;

use minijinja::value::Value;
use minijinja::{Environment, ErrorKind};

pub use fallback::{FALLBACKS, choose_fallback};
pub use guard::{MAX_TAG_OPERATORS, max_tag_operators};
pub use time::ChatDateTime;

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: role.into(), content: content.into() }
    }
}

/// Roles a message may have.
pub const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ChatError {
    #[error("no messages to render")]
    EmptyMessages,
    #[error("unknown message role {0:?} (allowed: system, user, assistant, tool)")]
    UnknownRole(String),
    /// The template does not parse.
    #[error("chat template syntax error: {0}")]
    Syntax(String),
    /// The template called `raise_exception(msg)`: it refuses this conversation (for example a
    /// system message, or roles that do not alternate). The text is the template's.
    #[error("chat template refused the conversation: {0}")]
    Raised(String),
    /// Any other failure while rendering (undefined operations, bad filter arguments, …).
    #[error("chat template failed: {0}")]
    Render(String),
    /// The render went past a bound of [`RenderLimits`]: `limit` is `max_output_bytes` when the
    /// output grew too long, or `fuel` when the template did too much work or built too much data.
    #[error("chat template render exceeded its limit ({limit})")]
    TooLarge { limit: usize },
}

/// Where a model's template came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateSource {
    /// `tokenizer.chat_template` of the GGUF file.
    Gguf,
    /// A built-in template: "chatml", "llama3", "llama2", "zephyr", "gemma" or "phi3".
    Fallback(&'static str),
}

/// Bounds on one render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderLimits {
    /// Longest output, in bytes.
    pub max_output_bytes: usize,
    /// minijinja fuel: one unit per instruction plus one per 64 bytes of values created, so it
    /// bounds both time and memory (1M fuel ≈ 64 MB of values at most). The real templates in
    /// `tests/data/chat_templates` need 4–7 thousand for a 100-turn chat.
    pub fuel: u64,
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits { max_output_bytes: 1 << 20, fuel: 1_000_000 }
    }
}

/// A compiled chat template and the special-token strings it is rendered with.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    limits: RenderLimits,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source_text` once; `bos_token` and `eos_token` are the strings the template
    /// sees as `bos_token` / `eos_token`.
    pub fn new(source_text: &str, bos_token: &str, eos_token: &str) -> Result<Self, ChatError> {
        let ops = guard::max_tag_operators(source_text);
        if ops > guard::MAX_TAG_OPERATORS {
            return Err(ChatError::Syntax(format!(
                "a tag holds {ops} operators, more than the {} allowed (the expression would nest too deeply)",
                guard::MAX_TAG_OPERATORS
            )));
        }
        let limits = RenderLimits::default();
        let mut env = env::new_env(limits.fuel);
        env.add_template_owned(env::TEMPLATE_NAME, env::rewrite_generation_tags(source_text))
            .map_err(|e| ChatError::Syntax(e.to_string()))?;
        Ok(ChatTemplate { env, bos_token: bos_token.to_string(), eos_token: eos_token.to_string(), limits })
    }

    /// A built-in template by name (see [`FALLBACKS`]); `None` for an unknown name.
    pub fn fallback(name: &str, bos_token: &str, eos_token: &str) -> Option<Self> {
        let (_, source) = fallback::fallback_source(name)?;
        ChatTemplate::new(source, bos_token, eos_token).ok()
    }

    /// From a GGUF's metadata: `tokenizer.chat_template` when present, else a built-in template
    /// chosen by [`choose_fallback`]. `bos_token` / `eos_token` are the texts of the tokens
    /// `tokenizer.ggml.bos_token_id` / `eos_token_id` ("" when absent).
    pub fn from_gguf(md: &crate::gguf::Metadata) -> Result<(Self, TemplateSource), ChatError> {
        let bos = fallback::token_text(md, "tokenizer.ggml.bos_token_id");
        let eos = fallback::token_text(md, "tokenizer.ggml.eos_token_id");
        if let Some(src) = md.get_str("tokenizer.chat_template")
            && !src.trim().is_empty()
        {
            return Ok((ChatTemplate::new(src, &bos, &eos)?, TemplateSource::Gguf));
        }
        let name = choose_fallback(md);
        let (name, source) = fallback::fallback_source(name).expect("choose_fallback names a built-in template");
        Ok((ChatTemplate::new(source, &bos, &eos)?, TemplateSource::Fallback(name)))
    }

    /// Makes `strftime_now(fmt)` format this moment instead of the clock (tests, reproducible
    /// prompts, and the browser, where there is no clock and the date otherwise defaults to
    /// 26 Jul 2024, the Llama 3.x templates' own default).
    pub fn with_now(mut self, now: ChatDateTime) -> Self {
        env::set_now(&mut self.env, Some(now));
        self
    }

    /// Replaces the render bounds.
    pub fn with_limits(mut self, limits: RenderLimits) -> Self {
        self.env.set_fuel(Some(limits.fuel));
        self.limits = limits;
        self
    }

    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders a conversation. `add_generation_prompt` appends the opening of an assistant turn.
    /// The variables the template sees are what transformers' `apply_chat_template` passes:
    /// `messages` (a list of `{role, content}`), `add_generation_prompt`, `bos_token`,
    /// `eos_token`, and `tools` / `documents` set to none.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String, ChatError> {
        if messages.is_empty() {
            return Err(ChatError::EmptyMessages);
        }
        if let Some(m) = messages.iter().find(|m| !ROLES.contains(&m.role.as_str())) {
            return Err(ChatError::UnknownRole(m.role.clone()));
        }
        let msgs: Value = messages
            .iter()
            .map(|m| Value::from_pairs([("role", m.role.as_str()), ("content", m.content.as_str())]))
            .collect();
        let ctx = Value::from_pairs([
            ("messages", msgs),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
            ("bos_token", Value::from(self.bos_token.as_str())),
            ("eos_token", Value::from(self.eos_token.as_str())),
            ("tools", Value::from(())),
            ("documents", Value::from(())),
        ]);
        let tmpl = self.env.get_template(env::TEMPLATE_NAME).map_err(|e| ChatError::Render(e.to_string()))?;
        let mut out = BoundedWriter { buf: Vec::new(), limit: self.limits.max_output_bytes, over: false };
        match tmpl.render_captured_to(ctx, &mut out) {
            Ok(_) => String::from_utf8(out.buf).map_err(|e| ChatError::Render(e.to_string())),
            Err(_) if out.over => Err(ChatError::TooLarge { limit: self.limits.max_output_bytes }),
            Err(e) => Err(self.map_error(e)),
        }
    }

    fn map_error(&self, e: minijinja::Error) -> ChatError {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = cur {
            if let Some(r) = err.downcast_ref::<env::Raised>() {
                return ChatError::Raised(r.0.clone());
            }
            cur = err.source();
        }
        match e.kind() {
            ErrorKind::OutOfFuel => {
                ChatError::TooLarge { limit: usize::try_from(self.limits.fuel).unwrap_or(usize::MAX) }
            }
            ErrorKind::SyntaxError => ChatError::Syntax(e.to_string()),
            _ => ChatError::Render(e.to_string()),
        }
    }
}

/// Collects output and refuses to grow past `limit` bytes.
struct BoundedWriter {
    buf: Vec<u8>,
    limit: usize,
    over: bool,
}

impl io::Write for BoundedWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.len() + b.len() > self.limit {
            self.over = true;
            return Err(io::Error::other("chat template output too large"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
