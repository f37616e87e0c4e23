// epilogue/split3.wgsl, the q/k/v projections as one product over attn_q, attn_k and attn_v
// concatenated (width0 + width1 + width2 = n_rows rows): row r of part i goes to
//   part i's buffer [t * width_i + r - first row of part i]   (out, out1, out2; from offset 0)
// plus bias[r] first when p.has_bias != 0 (the three biases concatenated; otherwise `bias` is
// a one-value dummy that is never read).
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> out1: array<f32>;
@group(0) @binding(6) var<storage, read_write> out2: array<f32>;
@group(0) @binding(7) var<storage, read> bias: array<f32>;

const PAIRED: bool = false;

fn emit(t: u32, r: u32, y: f32, unused: f32) {
    var v = y;
    if (p.has_bias != 0u) {
        v += bias[r];
    }
    let w0 = p.width0;
    let w01 = w0 + p.width1;
    if (r < w0) {
        out[t * w0 + r] = v;
    } else if (r < w01) {
        out1[t * p.width1 + r - w0] = v;
    } else {
        out2[t * (p.n_rows - w01) + r - w01] = v;
    }
}
