//! Requests and results, named as in OpenAI's completions and chat completions APIs so web
//! developers meet familiar fields.

use crate::sampler::SamplerParams;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What to generate from: text, or token ids (as OpenAI's `prompt` also allows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Tokens(Vec<u32>),
}

/// Sampling and stopping options shared by completions and chat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationOptions {
    pub max_tokens: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: usize,
    pub min_p: f32,
    pub repetition_penalty: f32,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    pub seed: u64,
    /// Generation ends before any of these strings; the string itself is not returned. As in
    /// OpenAI's API, JSON may give one string or an array.
    #[serde(deserialize_with = "one_or_many")]
    pub stop: Vec<String>,
    /// OpenAI's `stream` flag. The Rust API streams through `*_stream` methods whatever this
    /// says; wrappers (the JS package) use it to choose.
    pub stream: bool,
    /// Keep going past end-of-generation tokens (benchmarks need fixed lengths).
    pub ignore_eos: bool,
}

impl Default for GenerationOptions {
    fn default() -> Self {
        GenerationOptions {
            max_tokens: 256,
            temperature: 0.8,
            top_p: 0.95,
            top_k: 40,
            min_p: 0.05,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: 0,
            stop: Vec::new(),
            stream: false,
            ignore_eos: false,
        }
    }
}

impl GenerationOptions {
    pub fn sampler(&self) -> SamplerParams {
        SamplerParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            seed: self.seed,
            ..SamplerParams::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.sampler().validate()?;
        if self.max_tokens == 0 {
            return Err(Error::InvalidArgument("max_tokens must be at least 1".into()));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(Error::InvalidArgument("stop strings must not be empty".into()));
        }
        Ok(())
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    pub prompt: Prompt,
    /// Add the model's BOS token (as llama.cpp does for text prompts) — ignored for token prompts.
    #[serde(default = "yes")]
    pub add_special: bool,
    #[serde(flatten)]
    pub options: GenerationOptions,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<crate::chat::ChatMessage>,
    #[serde(flatten)]
    pub options: GenerationOptions,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens`, or the context is full.
    Length,
    /// Cancelled from outside.
    Cancelled,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt tokens whose keys and values were already in the cache (multi-turn reuse).
    pub cached_tokens: usize,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub tokens: Vec<u32>,
    pub finish_reason: FinishReason,
    pub usage: Usage,
}
