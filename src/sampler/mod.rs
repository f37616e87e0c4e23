//! Token sampling, in the order of llama.cpp's common sampler chain:
//! penalties → top-k → top-p → min-p → temperature → seeded draw.
//!
//! Everything that decides which token comes out is deterministic across platforms (native and
//! wasm32): the generator is integer-only (`rng.rs`), `exp` is our own (`math.rs`, basic IEEE
//! operations only, no libm), ties are broken by the lower token id, and no step depends on
//! hash-map or unstable-sort order. So the same seed and logits give the same tokens everywhere.
//!
//! Filters (top-k/top-p/min-p) look at the penalized logits *before* temperature, as in
//! llama.cpp; temperature only shapes the final draw. `temperature <= 0` (or `top_k == 1`) is
//! greedy: the argmax of the penalized logits, lowest id on ties.

mod math;
mod rng;

pub use math::exp_f64;
pub use rng::{Rng, SplitMix64};

use crate::Error;
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq)]
pub struct SamplerParams {
    /// 0 = greedy.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens; 0 = off.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`; 1 = off.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` × the most likely one; 0 = off.
    pub min_p: f32,
    /// Divides positive / multiplies negative logits of recent tokens; 1 = off.
    pub repetition_penalty: f32,
    /// Subtracted once from the logit of every token seen in the window; 0 = off.
    pub presence_penalty: f32,
    /// Subtracted per occurrence in the window; 0 = off.
    pub frequency_penalty: f32,
    /// How many of the latest history tokens the penalties look at; 0 = penalties off.
    pub penalty_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerParams {
    /// Greedy decoding, every filter and penalty off.
    fn default() -> Self {
        SamplerParams {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0,
        }
    }
}

impl SamplerParams {
    /// Whether the pick is the plain argmax of the logits (greedy, no penalties): a backend can
    /// then find it where the logits are and return one id.
    pub fn is_argmax(&self) -> bool {
        self.is_greedy() && !self.penalties_active()
    }

    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad(format!("temperature must be a finite number >= 0 (0 = greedy), got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1] (1 = off), got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad(format!("min_p must be in [0, 1] (0 = off), got {}", self.min_p));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return bad(format!(
                "repetition_penalty must be a finite number > 0 (1 = off), got {}",
                self.repetition_penalty
            ));
        }
        if !self.presence_penalty.is_finite() || !self.frequency_penalty.is_finite() {
            return bad(format!(
                "presence_penalty and frequency_penalty must be finite, got {} and {}",
                self.presence_penalty, self.frequency_penalty
            ));
        }
        Ok(())
    }

    fn penalties_active(&self) -> bool {
        self.penalty_last_n > 0
            && (self.repetition_penalty != 1.0 || self.presence_penalty != 0.0 || self.frequency_penalty != 0.0)
    }

    fn is_greedy(&self) -> bool {
        self.temperature.is_nan() || self.temperature <= 0.0 || self.top_k == 1
    }
}

/// The most candidates [`Sampler::candidates_needed`] asks for: beyond it the backend's whole
/// row of logits is cheaper to read than to select from.
pub const MAX_CANDIDATES: usize = 1024;

#[derive(Clone, Copy, Debug)]
struct Candidate {
    logit: f32,
    id: u32,
}

/// Most likely first; equal logits: lower id first. A total order, so every sort and selection
/// gives the same result on every platform.
fn by_rank(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

/// NaN would poison comparisons and sums: it becomes -inf (never chosen unless everything is),
/// +inf becomes f32::MAX so differences stay finite, -0.0 becomes 0.0 so `total_cmp` agrees
/// with `>`.
fn sanitize(x: f32) -> f32 {
    if x.is_nan() {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        f32::MAX
    } else {
        x + 0.0
    }
}

/// Index of the largest logit; ties go to the lowest id (as llama.cpp's goldens, and numpy's
/// argmax). NaN is never chosen; an empty or all-NaN slice gives 0.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best: Option<(usize, f32)> = None;
    for (i, &x) in logits.iter().enumerate() {
        if x.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best.map_or(0, |(i, _)| i as u32)
}

/// The `n` most likely tokens of a row as `(id, raw logit)`, by [`Sampler`]'s ranking (the
/// sanitized logit, ties to the lower id), most likely first: what a backend hands
/// [`Sampler::sample_candidates`].
pub fn top_candidates(logits: &[f32], n: usize) -> Vec<(u32, f32)> {
    let mut cands: Vec<Candidate> =
        logits.iter().enumerate().map(|(i, &x)| Candidate { logit: sanitize(x), id: i as u32 }).collect();
    let n = n.min(cands.len());
    if n == 0 {
        return Vec::new();
    }
    if n < cands.len() {
        cands.select_nth_unstable_by(n - 1, by_rank);
        cands.truncate(n);
    }
    cands.sort_unstable_by(by_rank);
    cands.into_iter().map(|c| (c.id, logits[c.id as usize])).collect()
}

pub struct Sampler {
    params: SamplerParams,
    rng: Rng,
    /// Reused every call, so sampling allocates nothing once warmed up.
    cands: Vec<Candidate>,
    penalized: Vec<f32>,
    weights: Vec<f64>,
    window: Vec<u32>,
}

impl Sampler {
    /// Takes the parameters as they are; call `SamplerParams::validate` first to reject bad
    /// ones. Out-of-range values are read leniently: negative temperature is greedy, `top_p`
    /// outside (0, 1) and `min_p <= 0` are off.
    pub fn new(params: SamplerParams) -> Self {
        Sampler {
            rng: Rng::new(params.seed),
            params,
            cands: Vec::new(),
            penalized: Vec::new(),
            weights: Vec::new(),
            window: Vec::new(),
        }
    }

    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// Back to the state right after `new`: the same seed gives the same sequence again.
    pub fn reset(&mut self) {
        self.rng = Rng::new(self.params.seed);
    }

    /// Picks the next token from `logits` (one per vocabulary entry); `history` is every token
    /// so far (prompt and generated), of which the last `penalty_last_n` are penalized.
    /// Empty `logits` give 0.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        if logits.is_empty() {
            return 0;
        }
        let p = self.params.clone();
        self.penalized.clear();
        self.penalized.extend_from_slice(logits);
        penalize(&p, &mut self.penalized, history, &mut self.window);
        self.cands.clear();
        self.cands
            .extend(self.penalized.iter().enumerate().map(|(i, &x)| Candidate { logit: sanitize(x), id: i as u32 }));
        self.pick()
    }

    /// How many of the most likely tokens (by raw logit, ties to the lower id) are enough for
    /// [`Sampler::sample_candidates`] to pick exactly what [`Sampler::sample`] picks from the
    /// whole row: `top_k` (1 when greedy) plus every distinct token the penalties may push out
    /// of it. `None` when no such bound holds: no top-k (the draw may reach any token),
    /// penalties that can raise a logit (repetition < 1, negative presence or frequency), or
    /// more than [`MAX_CANDIDATES`].
    pub fn candidates_needed(&mut self, history: &[u32]) -> Option<usize> {
        let p = &self.params;
        let k = if p.is_greedy() { 1 } else { p.top_k };
        if k == 0 {
            return None;
        }
        let penalized = if p.penalties_active() {
            if p.repetition_penalty < 1.0 || p.presence_penalty < 0.0 || p.frequency_penalty < 0.0 {
                return None;
            }
            self.window.clear();
            self.window.extend_from_slice(&history[history.len().saturating_sub(p.penalty_last_n)..]);
            self.window.sort_unstable();
            self.window.dedup();
            self.window.len()
        } else {
            0
        };
        Some(k + penalized).filter(|&n| n <= MAX_CANDIDATES)
    }

    /// [`Sampler::sample`] given only the `(id, raw logit)` of the most likely tokens, at least
    /// [`Sampler::candidates_needed`] of them (in any order). Only the penalties reach outside
    /// the top-k, and they can only lower a logit: the top-k after them is within the
    /// candidates, and every later step sees nothing else, so the pick is the same.
    pub fn sample_candidates(&mut self, candidates: &[(u32, f32)], history: &[u32]) -> u32 {
        if candidates.is_empty() {
            return 0;
        }
        let p = self.params.clone();
        self.penalized.clear();
        self.penalized.extend(candidates.iter().map(|c| c.1));
        penalize_candidates(&p, &mut self.penalized, candidates, history, &mut self.window);
        self.cands.clear();
        self.cands
            .extend(candidates.iter().zip(&self.penalized).map(|(c, &x)| Candidate { logit: sanitize(x), id: c.0 }));
        self.pick()
    }

    /// The chain after the penalties, over `self.cands` (sanitized, any order).
    fn pick(&mut self) -> u32 {
        let p = &self.params;
        if p.is_greedy() {
            // Every filter keeps the most likely token, and temperature 0 keeps only it.
            let best = self.cands.iter().copied().min_by(by_rank).unwrap();
            return best.id;
        }
        let cands = &mut self.cands;
        let filtering = p.top_k > 0 || (p.top_p > 0.0 && p.top_p < 1.0) || p.min_p > 0.0;
        if filtering {
            if p.top_k > 0 && p.top_k < cands.len() {
                cands.select_nth_unstable_by(p.top_k - 1, by_rank);
                cands.truncate(p.top_k);
            }
            cands.sort_unstable_by(by_rank);
        }
        let max = cands.iter().map(|c| c.logit).fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            // Nothing has any probability (all logits NaN or -inf): fall back to the lowest id.
            return cands.iter().copied().min_by(by_rank).unwrap().id;
        }
        if p.top_p > 0.0 && p.top_p < 1.0 {
            // As llama.cpp: softmax of the untempered logits, keep the shortest prefix whose
            // cumulative probability reaches top_p.
            let sum: f64 = cands.iter().map(|c| exp_f64(c.logit as f64 - max as f64)).sum();
            let target = p.top_p as f64 * sum;
            let mut cum = 0.0f64;
            let mut keep = cands.len();
            for (i, c) in cands.iter().enumerate() {
                cum += exp_f64(c.logit as f64 - max as f64);
                if cum >= target {
                    keep = i + 1;
                    break;
                }
            }
            cands.truncate(keep);
        }
        if p.min_p > 0.0 {
            // p_i / p_max >= min_p, i.e. llama.cpp's logit_i >= max + ln(min_p); sorted, so the
            // kept tokens are a prefix (the first one always stays: its ratio is 1).
            let keep = cands.iter().take_while(|c| exp_f64(c.logit as f64 - max as f64) >= p.min_p as f64).count();
            cands.truncate(keep.max(1));
        }
        // Temperature, then the draw: u·Σw walked along the cumulative weights.
        let t = p.temperature as f64;
        self.weights.clear();
        self.weights.extend(cands.iter().map(|c| exp_f64((c.logit as f64 - max as f64) / t)));
        let total: f64 = self.weights.iter().sum();
        let target = self.rng.next_f64() * total;
        let mut cum = 0.0f64;
        for (c, w) in cands.iter().zip(&self.weights) {
            cum += w;
            if target < cum {
                return c.id;
            }
        }
        // Only reachable through rounding in the last step: the last token with any weight.
        let last = self.weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
        cands[last].id
    }
}

/// The penalties for a run of candidates: `logits[i]` is the logit of `candidates[i].0`.
fn penalize_candidates(
    p: &SamplerParams,
    logits: &mut [f32],
    candidates: &[(u32, f32)],
    history: &[u32],
    window: &mut Vec<u32>,
) {
    for_each_penalized(p, history, window, |id, count| {
        if let Some(i) = candidates.iter().position(|c| c.0 == id) {
            penalize_one(p, &mut logits[i], count);
        }
    });
}

/// llama.cpp's penalties over the last `penalty_last_n` tokens of `history`: for each distinct
/// token with count c in that window, `logit = logit <= 0 ? logit·rep : logit / rep`, then
/// `logit -= c·freq + presence`. History ids outside `logits` are ignored.
pub fn apply_penalties(params: &SamplerParams, logits: &mut [f32], history: &[u32]) {
    penalize(params, logits, history, &mut Vec::new());
}

/// `apply_penalties` with a caller-owned scratch buffer (the sampler reuses one).
fn penalize(p: &SamplerParams, logits: &mut [f32], history: &[u32], window: &mut Vec<u32>) {
    for_each_penalized(p, history, window, |id, count| {
        if let Some(x) = logits.get_mut(id as usize) {
            penalize_one(p, x, count);
        }
    });
}

/// Calls `f(id, count)` for each distinct token of the penalty window (none when the
/// penalties are off), in id order.
fn for_each_penalized(p: &SamplerParams, history: &[u32], window: &mut Vec<u32>, mut f: impl FnMut(u32, usize)) {
    if !p.penalties_active() {
        return;
    }
    let start = history.len().saturating_sub(p.penalty_last_n);
    window.clear();
    window.extend_from_slice(&history[start..]);
    window.sort_unstable();
    let mut i = 0;
    while i < window.len() {
        let id = window[i];
        let count = window[i..].iter().take_while(|&&t| t == id).count();
        i += count;
        f(id, count);
    }
}

fn penalize_one(p: &SamplerParams, x: &mut f32, count: usize) {
    if *x <= 0.0 {
        *x *= p.repetition_penalty;
    } else {
        *x /= p.repetition_penalty;
    }
    *x -= count as f32 * p.frequency_penalty + p.presence_penalty;
}
