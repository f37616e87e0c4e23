// epilogue/geglu.wgsl, Gemma's feed-forward gate fused into the gate/up projection: the weight
// holds 2 n_rows rows, ffn_gate's then ffn_up's, and row r gives
//   out[out_offset + t * out_stride + r] = gelu(g) * u,  g = W[r] · x[t], u = W[n_rows + r] · x[t],
// gelu as ggml's CPU table computes it (common.wgsl's gelu_f16_table).
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const PAIRED: bool = true;

fn emit(t: u32, r: u32, g: f32, u: f32) {
    out[p.out_offset + t * p.out_stride + r] = gelu_f16_table(g) * u;
}
