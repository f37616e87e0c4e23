// epilogue/accumulate.wgsl, the residual add fused into a projection (x += W_o · attn,
// x += W_down · h): out[out_offset + t * out_stride + r] += y.
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const PAIRED: bool = false;

fn emit(t: u32, r: u32, y: f32, unused: f32) {
    let i = p.out_offset + t * p.out_stride + r;
    out[i] += y;
}
