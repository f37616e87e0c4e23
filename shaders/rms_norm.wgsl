// rms_norm.wgsl: y[out_offset + r * width + c] = x[x_offset + r * width + c] * scale_r * w[c],
// scale_r = 1 / sqrt(mean_c(x[r][c]^2) + eps), for rows r < n_tokens * rows_per_token.
// rows_per_token = 1 is the model's RMS norm over the hidden state; rows_per_token = n_heads with
// width = head_dim is Qwen3's per-head q/k norm. The variant prepends how x is read and y written:
//   out-of-place: `@binding(4) var<storage, read> x: array<f32>`, load_x(i) = x[i], put(i, v): y[i] = v;
//   in-place:     load_x(i) = y[i] (no binding 4; x_offset = out_offset), put as out-of-place;
//   accumulate:   as out-of-place but put(i, v): y[i] += v (Gemma's post-norms: the residual
//                 add of a normalised block output).
//
// Bindings (group 0):
//   0  y     storage, read_write  array<f32>  output (and input, in place)
//   1  w     storage, read        array<f32>  the norm weight (F32, width values)
//   2  p     uniform              Params
//   3  step  uniform              Step (n_tokens)
//   4  x     storage, read        array<f32>  input (out-of-place and accumulate variants)
// Knobs: WG = 64 invocations per row; sum of squares in f32, strided then a tree reduction in
//   256 B of workgroup memory.
// Dispatch: one workgroup per row, n_tokens * rows_per_token on a 2-D grid (x <= 65535).

struct Params {
    width: u32,
    rows_per_token: u32,
    x_offset: u32,
    out_offset: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct Step {
    n_tokens: u32,
    pos0: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;

var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= step.n_tokens * p.rows_per_token) {
        return; // whole workgroup
    }
    let xi = p.x_offset + row * p.width;
    let yi = p.out_offset + row * p.width;
    var s = 0.0;
    for (var c = lid; c < p.width; c += 64u) {
        let v = load_x(xi + c);
        s += v * v;
    }
    partial[lid] = s;
    workgroupBarrier();
    for (var k = 32u; k > 0u; k >>= 1u) {
        if (lid < k) {
            partial[lid] += partial[lid + k];
        }
        workgroupBarrier();
    }
    let scale = 1.0 / sqrt(partial[0] / f32(p.width) + p.eps);
    for (var c = lid; c < p.width; c += 64u) {
        put(yi + c, load_x(xi + c) * scale * w[c]);
    }
}
