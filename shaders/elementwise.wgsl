// elementwise.wgsl: one value per invocation over n_tokens rows of `width` values. The variant
// prepends `const OP: u32`:
//   0 add:      x[x_offset + i] += y[y_offset + i]                (residual)
//   1 add_bias: x[x_offset + i] += y[i % width]                   (y: the F32 bias weight)
//   2 swiglu:   x[x_offset + i] = silu(x[..]) * y[y_offset + i]   silu(g) = g / (1 + e^-g), as ggml
//   3 geglu:    x[x_offset + i] = gelu(x[..]) * y[y_offset + i]   gelu: common.wgsl's gelu_f16_table
//   4 softcap:  x[x_offset + i] = param * tanh(x[..] / param)      (y unused: a one-value dummy)
//
// Bindings (group 0):
//   0  x     storage, read_write  array<f32>
//   1  y     storage, read        array<f32>
//   2  p     uniform              Params
//   3  step  uniform              Step (n_tokens)
// Knobs: WG = 64 invocations.
// Dispatch: ceil(n_tokens * width / 64) workgroups on a 2-D grid (x <= 65535).

struct Params {
    width: u32,
    x_offset: u32,
    y_offset: u32,
    param: f32,
}

struct Step {
    n_tokens: u32,
    pos0: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= step.n_tokens * p.width) {
        return;
    }
    let xi = p.x_offset + i;
    if (OP == 0u) {
        x[xi] += y[p.y_offset + i];
    } else if (OP == 1u) {
        x[xi] += y[i % p.width];
    } else if (OP == 2u) {
        let g = x[xi];
        x[xi] = g / (1.0 + exp(-g)) * y[p.y_offset + i];
    } else if (OP == 3u) {
        x[xi] = gelu_f16_table(x[xi]) * y[p.y_offset + i];
    } else {
        x[xi] = soft_cap(x[xi], p.param);
    }
}
