// epilogue/swiglu.wgsl, the feed-forward gate fused into the gate/up projection: the weight
// holds 2 n_rows rows, ffn_gate's then ffn_up's, and row r gives
//   out[out_offset + t * out_stride + r] = silu(g) * u,  g = W[r] · x[t], u = W[n_rows + r] · x[t],
// silu(g) = g / (1 + e^-g), as ggml and elementwise.wgsl.
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const PAIRED: bool = true;

fn emit(t: u32, r: u32, g: f32, u: f32) {
    out[p.out_offset + t * p.out_stride + r] = g / (1.0 + exp(-g)) * u;
}
