//! Prompt processing plus a sampling loop: the text-in, text-out path the CLI uses.

use crate::backend::Backend;
use crate::model::{Logits, Model};
use crate::sampler::{Sampler, SamplerParams};
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::{Error, Result};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct GenerateParams {
    pub max_tokens: usize,
    pub sampler: SamplerParams,
    /// Keep going past end-of-generation tokens (benchmarks need fixed lengths).
    pub ignore_eos: bool,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams { max_tokens: 128, sampler: SamplerParams::default(), ignore_eos: false }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token.
    Stop,
    /// `max_tokens` or the end of the context.
    Length,
}

#[derive(Clone, Debug)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub text: String,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

impl Generation {
    pub fn prefill_tok_s(&self) -> f64 {
        rate(self.prompt_tokens, self.prefill_ms)
    }

    /// Decode speed counts the tokens after the first, whose logits came from the prefill.
    pub fn decode_tok_s(&self) -> f64 {
        rate(self.tokens.len().saturating_sub(1), self.decode_ms)
    }
}

fn rate(n: usize, ms: f64) -> f64 {
    if ms > 0.0 { n as f64 * 1000.0 / ms } else { 0.0 }
}

/// Generates from `prompt` (ids, BOS already added as wanted), streaming text pieces to `on_text`.
pub fn generate<B: Backend>(
    model: &mut Model<B>,
    tokenizer: &Tokenizer,
    prompt: &[u32],
    params: &GenerateParams,
    mut on_text: impl FnMut(&str),
) -> Result<Generation> {
    params.sampler.validate()?;
    if prompt.is_empty() {
        return Err(Error::InvalidArgument("the prompt has no tokens".into()));
    }
    if prompt.len() >= model.n_ctx() {
        return Err(Error::ContextFull { needed: prompt.len() + 1, context: model.n_ctx() });
    }
    let mut sampler = Sampler::new(params.sampler.clone());
    let mut history = prompt.to_vec();
    let mut decoder = StreamDecoder::new();
    let mut text = String::new();
    let mut out = Vec::new();

    let t0 = Instant::now();
    let mut logits = model.forward(prompt, 0, Logits::Last)?;
    let prefill_ms = t0.elapsed().as_secs_f64() * 1e3;

    let t1 = Instant::now();
    let mut finish_reason = FinishReason::Length;
    while out.len() < params.max_tokens {
        let id = sampler.sample(&logits, &history);
        if !params.ignore_eos && tokenizer.is_eog(id) {
            finish_reason = FinishReason::Stop;
            break;
        }
        out.push(id);
        history.push(id);
        let piece = decoder.push(tokenizer, id);
        on_text(&piece);
        text.push_str(&piece);
        if out.len() == params.max_tokens || history.len() >= model.n_ctx() {
            break;
        }
        logits = model.forward(&[id], history.len() - 1, Logits::Last)?;
    }
    let rest = decoder.finish();
    on_text(&rest);
    text.push_str(&rest);
    let decode_ms = t1.elapsed().as_secs_f64() * 1e3;
    Ok(Generation { tokens: out, text, finish_reason, prompt_tokens: prompt.len(), prefill_ms, decode_ms })
}
