//! The generation loop: reuse the cached prefix, process the rest of the prompt as a batch, then
//! sample one token at a time until a stop condition.

use super::stop::StopMatcher;
use super::{CancelToken, Completion, Engine, FinishReason, GenerationOptions, Usage, YieldFuture};
use crate::backend::Backend;
use crate::clock::Stopwatch;
use crate::model::Logits;
use crate::sampler::Sampler;
use crate::tokenizer::StreamDecoder;
use crate::{Error, Result};

impl<B: Backend> Engine<B> {
    pub(super) async fn generate(
        &mut self,
        prompt: &[u32],
        opts: &GenerationOptions,
        cancel: &CancelToken,
        on_delta: &mut dyn FnMut(&str),
        yield_now: &mut dyn FnMut() -> YieldFuture,
    ) -> Result<Completion> {
        let n_ctx = self.model.n_ctx();
        if prompt.is_empty() {
            return Err(Error::InvalidArgument("the prompt has no tokens".into()));
        }
        if prompt.len() >= n_ctx {
            return Err(Error::ContextFull { needed: prompt.len() + 1, context: n_ctx });
        }
        if let Some(&id) = prompt.iter().find(|&&id| id as usize >= self.model.n_vocab()) {
            return Err(Error::TokenOutOfRange { id, n_vocab: self.model.n_vocab() });
        }

        // Keep the longest common prefix already in the cache; at least one token must be
        // processed to get logits for the next one. A sliding-window model's ring caches may no
        // longer hold the window before that prefix's end: then start over.
        let mut reused = common_prefix(&self.cached, prompt).min(prompt.len() - 1);
        if !self.model.can_resume_at(reused) {
            reused = 0;
        }
        self.cached.truncate(reused);
        let mut sampler = Sampler::new(opts.sampler());
        let mut history = prompt.to_vec();
        let t0 = Stopwatch::start();
        let mut id = self.next_token(&prompt[reused..], reused, &mut sampler, &history).await?;
        self.cached.extend_from_slice(&prompt[reused..]);
        let prefill_ms = t0.elapsed_ms();

        let mut decoder = StreamDecoder::new();
        let mut stops = StopMatcher::new(&opts.stop);
        let mut text = String::new();
        let mut emit = |piece: &str, text: &mut String| {
            if !piece.is_empty() {
                on_delta(piece);
                text.push_str(piece);
            }
        };
        let mut tokens = Vec::new();
        let mut stopped_by_string = false;
        let t1 = Stopwatch::start();
        let finish_reason = loop {
            if cancel.is_cancelled() {
                break FinishReason::Cancelled;
            }
            if !opts.ignore_eos && self.tokenizer.is_eog(id) {
                break FinishReason::Stop;
            }
            tokens.push(id);
            history.push(id);
            let released = stops.push(&decoder.push(&self.tokenizer, id));
            emit(&released.text, &mut text);
            if released.stopped {
                stopped_by_string = true;
                break FinishReason::Stop;
            }
            if tokens.len() >= opts.max_tokens || self.cached.len() >= n_ctx {
                break FinishReason::Length;
            }
            let fed = id;
            id = self.next_token(&[fed], self.cached.len(), &mut sampler, &history).await?;
            self.cached.push(fed);
            yield_now().await;
        };
        if !stopped_by_string {
            // Bytes of an unfinished character, and text held back for a stop string that never
            // came, belong to the answer (unless they complete a stop string).
            let tail = stops.push(&decoder.finish());
            emit(&tail.text, &mut text);
            if !tail.stopped {
                emit(&stops.finish(), &mut text);
            }
        }
        let decode_ms = t1.elapsed_ms();
        let decoded = tokens.len().saturating_sub(1);
        Ok(Completion {
            text,
            finish_reason,
            usage: Usage {
                prompt_tokens: prompt.len(),
                completion_tokens: tokens.len(),
                cached_tokens: reused,
                prefill_tok_s: rate(prompt.len() - reused, prefill_ms),
                decode_tok_s: rate(decoded, decode_ms),
            },
            tokens,
        })
    }
}

impl<B: Backend> Engine<B> {
    /// Runs `tokens` at `pos0` and picks the token that follows: on the backend when the pick
    /// is a plain argmax (one id read back); from the top candidates the backend selects when
    /// a top-k bounds the draw (the default sampling: 40 + the penalized tokens read back, not
    /// the vocabulary); else from the whole row of logits.
    async fn next_token(&mut self, tokens: &[u32], pos0: usize, sampler: &mut Sampler, history: &[u32]) -> Result<u32> {
        if sampler.params().is_argmax() {
            return self.model.forward_greedy(tokens, pos0).await;
        }
        if let Some(k) = sampler.candidates_needed(history) {
            let candidates = self.model.forward_top_candidates(tokens, pos0, k).await?;
            return Ok(sampler.sample_candidates(&candidates, history));
        }
        let logits = self.model.forward_async(tokens, pos0, Logits::Last).await?;
        Ok(sampler.sample(&logits, history))
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn rate(n: usize, ms: f64) -> f64 {
    if ms > 0.0 { n as f64 * 1000.0 / ms } else { 0.0 }
}
