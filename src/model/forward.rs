//! The forward pass, written once against `Backend`, top to bottom like llama2.c's `run.c`.

use super::weights::{GateUp, Qkv};
use super::{LOGIT_ROWS, Model};
use crate::backend::Backend;

/// x += W·h, or with a post-norm (Gemma) x += norm(W·h): `tmp` holds W·h then.
#[allow(clippy::too_many_arguments)]
fn residual_add<B: Backend>(
    be: &mut B,
    w: &B::Weight,
    h: &B::Buffer,
    post_norm: Option<&B::Weight>,
    n: usize,
    eps: f32,
    tmp: &mut B::Buffer,
    x: &mut B::Buffer,
) {
    match post_norm {
        None => be.matmul_add(w, h, n, x),
        Some(norm) => {
            be.matmul(w, h, n, tmp);
            be.rms_norm_add(tmp, norm, n, eps, x);
        }
    }
}

impl<B: Backend> Model<B> {
    /// Runs one batch of tokens through every layer; leaves the final hidden states in `x`.
    pub(super) fn forward_batch(&mut self, tokens: &[u32], pos: usize) {
        let c = &self.config;
        let (be, w, s) = (&mut self.backend, &self.weights, &mut self.state);
        let n = tokens.len();
        be.begin_step(n, pos);
        be.embed(&w.tok_embd, tokens, c.block.embed_scale, &mut s.x);
        for (l, lw) in w.layers.iter().enumerate() {
            let shape = c.attn_shape(l);
            // Attention block.
            be.rms_norm(&s.x, &lw.attn_norm, n, c.rms_eps, &mut s.xb);
            match &lw.qkv {
                Qkv::Fused { w, bias } => {
                    be.matmul_qkv(w, bias.as_ref(), &s.xb, n, shape, &mut s.q, &mut s.k, &mut s.v)
                }
                Qkv::Separate { q, k, v, bias } => {
                    be.matmul(q, &s.xb, n, &mut s.q);
                    be.matmul(k, &s.xb, n, &mut s.k);
                    be.matmul(v, &s.xb, n, &mut s.v);
                    if let Some([bq, bk, bv]) = bias {
                        be.add_bias(&mut s.q, bq, n);
                        be.add_bias(&mut s.k, bk, n);
                        be.add_bias(&mut s.v, bv, n);
                    }
                }
            }
            let qk_norm = lw.qk_norm.as_ref().map(|[qn, kn]| [qn, kn]);
            be.rope_store(&mut s.q, &mut s.k, &s.v, qk_norm, c.rms_eps, &mut self.cache, l, shape, n, pos);
            be.attention(&s.q, &self.cache, l, shape, n, pos, &mut s.attn);
            residual_add(be, &lw.wo, &s.attn, lw.post_attn_norm.as_ref(), n, c.rms_eps, &mut s.xb, &mut s.x);
            // Feed-forward block (SwiGLU, or GeGLU).
            be.rms_norm(&s.x, &lw.ffn_norm, n, c.rms_eps, &mut s.xb);
            let act = c.block.activation;
            match &lw.gate_up {
                GateUp::Fused(w) => be.matmul_glu(w, &s.xb, n, act, &mut s.hb),
                GateUp::Separate { gate, up } => {
                    let hb2 = s.hb2.as_mut().expect("allocated when gate and up are separate");
                    be.matmul(gate, &s.xb, n, &mut s.hb);
                    be.matmul(up, &s.xb, n, hb2);
                    be.glu(&mut s.hb, hb2, n * c.n_ff, act);
                }
            }
            residual_add(be, &lw.w_down, &s.hb, lw.post_ffn_norm.as_ref(), n, c.rms_eps, &mut s.xb, &mut s.x);
        }
    }

    /// Records the final norm and output head for up to LOGIT_ROWS rows `first..first + m` of
    /// the last batch (at position `pos` of row 0); the logits land in `state.logits`.
    pub(super) fn logits_head(&mut self, first: usize, m: usize, pos: usize) {
        let c = &self.config;
        let (be, w, s) = (&mut self.backend, &self.weights, &mut self.state);
        let head = w.output.as_ref().unwrap_or(&w.tok_embd);
        debug_assert!(m <= LOGIT_ROWS);
        be.begin_step(m, pos + first);
        be.copy(&s.x, first * c.n_embd, &mut s.xb, 0, m * c.n_embd);
        be.rms_norm(&s.xb, &w.output_norm, m, c.rms_eps, &mut s.out_rows);
        be.matmul(head, &s.out_rows, m, &mut s.logits);
        if let Some(cap) = c.block.final_softcap {
            be.softcap(&mut s.logits, m * c.n_vocab, cap);
        }
    }

    /// Appends the logits of rows `first..first + count` of the last batch to `out`.
    pub(super) async fn logits_rows(
        &mut self,
        first: usize,
        count: usize,
        pos: usize,
        out: &mut Vec<f32>,
    ) -> crate::Result<()> {
        let n_vocab = self.config.n_vocab;
        let mut row = first;
        while row < first + count {
            let m = (first + count - row).min(LOGIT_ROWS);
            self.logits_head(row, m, pos);
            let start = out.len();
            out.resize(start + m * n_vocab, 0.0);
            self.backend.read(&self.state.logits, 0, m * n_vocab, &mut out[start..]).await?;
            row += m;
        }
        Ok(())
    }

    /// The most likely next token after row `row` of the last batch: computed where the logits
    /// are, so the GPU reads back one id instead of the vocabulary.
    pub(super) async fn argmax_row(&mut self, row: usize, pos: usize) -> crate::Result<u32> {
        self.logits_head(row, 1, pos);
        self.backend.argmax(&self.state.logits, 0, self.config.n_vocab).await
    }
}
