// matvec.wgsl: decode matrix-vector product on quantized weights, dequantized in-shader.
//   out[out_offset + r] = sum_c W[r][c] * x[x_offset + c]   for r < n_rows (one weight piece)
// or, when p.accumulate != 0, out[out_offset + r] += that sum (the residual add fused in).
// Assembled at load as: common.wgsl + quant/weights.wgsl + quant/<type>.wgsl + this file.
// The quant file provides `n_items(n_cols)` and `item_dot(row_byte, item, x_offset, n_cols)`
// (a work item is a run of ITEM values of one row: 32 for block types, 4 for F32/F16/BF16).
//
// Bindings (group 0):
//   0  w    storage, read        array<u32>  GGUF block bytes of n_rows rows, padded to 4, + 1 word
//   1  x    storage, read        array<vec4<f32>>  activations (x_offset a multiple of 4)
//   2  out  storage, read_write  array<f32>
//   3  p    uniform              Params
// Knobs: WG = 64 invocations per workgroup (fits WebGPU's 256 default); TPR invocations per
//   row (a power of two dividing WG), prepended by the variant as `const TPR`: 64 for `Base`
//   (one workgroup per row: consecutive invocations read consecutive blocks, then a tree
//   reduction in 256 bytes of workgroup memory), 1 for `RowPerInvocation` (64 rows per
//   workgroup, no barrier: suits CPU adapters such as lavapipe and SwiftShader, whose
//   invocations are SIMD lanes). ROWS = WG / TPR rows per workgroup.
// Dispatch: G = ceil(n_rows / ROWS) workgroups as (min(G, 65535), ceil(G / 65535), 1).
// Needs no optional feature: 3 storage buffers + 1 uniform, f16 via unpack2x16float.

struct Params {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    x_offset: u32,
    out_offset: u32,
    accumulate: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 64u;
const ROWS: u32 = WG / TPR;

var<workgroup> partial: array<f32, 64>; // WG

// Activation i.
fn x1(i: u32) -> f32 {
    return x[i >> 2u][i & 3u];
}

// Activations i..i+4; i is a multiple of 4 (quant files only ask for such runs).
fn x4(i: u32) -> vec4<f32> {
    return x[i >> 2u];
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row0 = (wid.x + wid.y * nwg.x) * ROWS;
    if (row0 >= p.n_rows) {
        return; // whole workgroup: the last grid row may be partly empty
    }
    let r = row0 + lid / TPR;
    let lane = lid % TPR;
    var acc = 0.0;
    if (r < p.n_rows) {
        let items = n_items(p.n_cols);
        let rb = r * p.row_bytes;
        for (var i = lane; i < items; i += TPR) {
            acc += item_dot(rb, i, p.x_offset, p.n_cols);
        }
    }
    if (TPR > 1u) {
        partial[lid] = acc;
        workgroupBarrier();
        for (var s = TPR / 2u; s > 0u; s >>= 1u) {
            if (lane < s) {
                partial[lid] += partial[lid + s];
            }
            workgroupBarrier();
        }
        acc = partial[lid];
    }
    if (lane == 0u && r < p.n_rows) {
        if (p.accumulate != 0u) {
            out[p.out_offset + r] += acc;
        } else {
            out[p.out_offset + r] = acc;
        }
    }
}
