//! The forward pass, written once against `Backend`, top to bottom like llama2.c's `run.c`.

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
        be.embed(&w.tok_embd, tokens, &mut s.x);
        for (l, lw) in w.layers.iter().enumerate() {
            // Attention block.
            be.rms_norm(&s.x, &lw.attn_norm, n, c.rms_eps, &mut s.xb);
            be.matmul(&lw.wq, &s.xb, n, &mut s.q);
            be.matmul(&lw.wk, &s.xb, n, &mut s.k);
            be.matmul(&lw.wv, &s.xb, n, &mut s.v);
            if let Some([bq, bk, bv]) = &lw.bias {
                be.add_bias(&mut s.q, bq, n);
                be.add_bias(&mut s.k, bk, n);
                be.add_bias(&mut s.v, bv, n);
            }
            if let Some([qn, kn]) = &lw.qk_norm {
                be.head_norm(&mut s.q, qn, n * c.n_head, c.rms_eps);
                be.head_norm(&mut s.k, kn, n * c.n_head_kv, c.rms_eps);
            }
            be.rope(&mut s.q, n, c.n_head, c.head_dim, pos);
            be.rope(&mut s.k, n, c.n_head_kv, c.head_dim, pos);
            be.attention(&s.q, &s.k, &s.v, &mut self.cache, l, shape, n, pos, &mut s.attn);
            be.matmul(&lw.wo, &s.attn, n, &mut s.xb);
            be.add(&mut s.x, &s.xb, n * c.n_embd);
            // Feed-forward block (SwiGLU).
            be.rms_norm(&s.x, &lw.ffn_norm, n, c.rms_eps, &mut s.xb);
            be.matmul(&lw.w_gate, &s.xb, n, &mut s.hb);
            be.matmul(&lw.w_up, &s.xb, n, &mut s.hb2);
            be.swiglu(&mut s.hb, &s.hb2, n * c.n_ff);
            be.matmul(&lw.w_down, &s.hb, n, &mut s.xb);
            be.add(&mut s.x, &s.xb, n * c.n_embd);
        }
    }

    /// Appends the logits of rows `first..first + count` of the last batch to `out`.
    pub(super) fn logits_rows(&mut self, first: usize, count: usize, out: &mut Vec<f32>) {
        let c = &self.config;
        let (be, w, s) = (&mut self.backend, &self.weights, &mut self.state);
        let head = w.output.as_ref().unwrap_or(&w.tok_embd);
        let mut row = first;
        while row < first + count {
            let m = (first + count - row).min(LOGIT_ROWS);
            be.copy(&s.x, row * c.n_embd, &mut s.xb, 0, m * c.n_embd);
            be.rms_norm(&s.xb, &w.output_norm, m, c.rms_eps, &mut s.out_rows);
            be.matmul(head, &s.out_rows, m, &mut s.logits);
            let start = out.len();
            out.resize(start + m * c.n_vocab, 0.0);
            be.read(&s.logits, 0, m * c.n_vocab, &mut out[start..]);
            row += m;
        }
    }
}
