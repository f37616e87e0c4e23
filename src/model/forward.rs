//! The forward pass, written once against `Backend`, top to bottom like llama2.c's `run.c`.

use super::weights::{GateUp, Qkv};
use super::{LOGIT_ROWS, Model};
use crate::backend::{AttnShape, Backend};

impl<B: Backend> Model<B> {
    /// Runs one batch of tokens through every layer; leaves the final hidden states in `x`.
    pub(super) fn forward_batch(&mut self, tokens: &[u32], pos: usize) {
        let c = &self.config;
        let (be, w, s) = (&mut self.backend, &self.weights, &mut self.state);
        let n = tokens.len();
        let shape = AttnShape {
            n_head: c.n_head,
            n_head_kv: c.n_head_kv,
            head_dim: c.head_dim,
            head_dim_v: c.head_dim_v,
            scale: 1.0 / (c.head_dim as f32).sqrt(),
        };
        be.begin_step(n, pos);
        be.embed(&w.tok_embd, tokens, &mut s.x);
        for (l, lw) in w.layers.iter().enumerate() {
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
            be.matmul_add(&lw.wo, &s.attn, n, &mut s.x);
            // Feed-forward block (SwiGLU).
            be.rms_norm(&s.x, &lw.ffn_norm, n, c.rms_eps, &mut s.xb);
            match &lw.gate_up {
                GateUp::Fused(w) => be.matmul_swiglu(w, &s.xb, n, &mut s.hb),
                GateUp::Separate { gate, up } => {
                    let hb2 = s.hb2.as_mut().expect("allocated when gate and up are separate");
                    be.matmul(gate, &s.xb, n, &mut s.hb);
                    be.matmul(up, &s.xb, n, hb2);
                    be.swiglu(&mut s.hb, hb2, n * c.n_ff);
                }
            }
            be.matmul_add(&lw.w_down, &s.hb, n, &mut s.x);
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
