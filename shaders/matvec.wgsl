// matvec.wgsl: matrix products on quantized weights, dequantized in-shader: for each token t of
// the step (t < n_tokens, read from `step`: one when decoding, the prompt's tokens in prefill)
//   y[t][r] = sum_c W[r][c] * x[x_offset + t * x_stride + c]     r < n_rows (one weight piece)
// handed to `emit` of the epilogue file, which is where the output stage is fused in:
//   store       out[out_offset + t * out_stride + r] = y
//   accumulate  out[out_offset + t * out_stride + r] += y   (the residual add)
//   swiglu      out[t * out_stride + r] = silu(y[t][r]) * y[t][n_rows + r]   (gate rows, up rows)
//   split3      y (+ bias[r]) to row r's part of the fused q/k/v weight: out, out1 or out2
// Assembled at load as: common.wgsl + quant/weights.wgsl + quant/<type>.wgsl + tile/<TT>.wgsl +
// the variant's consts + epilogue/<kind>.wgsl + reduce/<workgroup|subgroup>.wgsl + this file
// (the Subgroup variant also fills in the two SUBGROUP comments of main).
// The quant file provides `n_items(n_cols)` and `item_dot(row_byte, item, n_cols)`: the dots of
// one work item (a run of ITEM values of a row: 32 for block types, 4 for F32/F16/BF16) with the
// activations of each of the TT tokens of the workgroup's tile, as an `Acc` (one f32 per token:
// f32 or mat2x4<f32>) built by the tile file's xdot/xsum/xmul from x4(t, c) and x1(t, c) below. Each weight word is fetched and unpacked once per tile, not once per token.
//
// Bindings (group 0):
//   0  w     storage, read        array<u32>  GGUF block bytes of the rows, padded to 4, + 1 word
//   1  x     storage, read        array<vec4<f32>>  activations; x_offset, and x_stride when a
//                                 tile holds more than one token, are multiples of 4
//   2  out   storage, read_write  array<f32>  (split3: the q part)
//   3  p     uniform              Params
//   4  step  uniform              Step: n_tokens (the kernel never goes past p.max_tokens)
//   5  out1, 6  out2  storage, read_write; 7  bias  storage, read (split3 only, see its file)
// Knobs, prepended as consts by the variant:
//   WG = 64 invocations per workgroup (fits WebGPU's 256 default); TPR invocations per row (a
//   power of two dividing WG): 64 for `Base` (one workgroup per row: consecutive invocations
//   read consecutive blocks, then a tree reduction in workgroup memory), 1 for
//   `RowPerInvocation` (64 rows per workgroup, no barrier: suits CPU adapters such as lavapipe
//   and SwiftShader, whose invocations are SIMD lanes), 64 for `Subgroup` (Base with its
//   reduction done by subgroupAdd, one barrier; GPUs with the `subgroups` feature).
//   ROWS = WG / TPR rows per workgroup.
//   TT tokens per workgroup (from the tile file): 1 in the decode kernels (`matvec_*`, used for
//   one-token steps: exactly the per-token work of a plain matvec), 8 in the prefill kernels
//   (`matmul_*`): each weight word is read and unpacked once per 8 tokens (prefill on a GPU is
//   bound by weight bandwidth) for 8 sums per invocation (16 for types that also sum x) and
//   4 KiB of workgroup memory at most; 4 was no better on lavapipe (see Variant::tile_tokens).
//   Tokens of a tile past the step's last read the last token's activations and are not
//   written, so the per-token sums need neither loops nor branches and stay in registers.
//   PAIRED (from the epilogue): two dot products per output row (swiglu's gate and up).
// Workgroup memory: WG * TT * (1 or 2) floats for the Base reduction (at most 4 KiB).
// Dispatch: G = ceil(n_rows / ROWS) workgroups as (min(G, 65535), ceil(G / 65535),
//   ceil(n_tokens / TT)), once per weight piece.
// Needs no optional feature: at most 6 storage buffers + 2 uniforms, f16 via unpack2x16float.

struct Params {
    n_rows: u32, // output rows (swiglu: half the weight's rows)
    n_cols: u32,
    row_bytes: u32,
    x_offset: u32,
    x_stride: u32,
    out_offset: u32,
    out_stride: u32,
    max_tokens: u32,
    width0: u32, // split3: rows of the q part
    width1: u32, // split3: rows of the k part (v has the rest)
    has_bias: u32, // split3
    _pad: u32,
}

struct Step {
    n_tokens: u32,
    pos0: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> step: Step;

const WG: u32 = 64u;
const ROWS: u32 = WG / TPR;
const DOTS: u32 = select(1u, 2u, PAIRED);

// The Base reduction's sums (unused, one value, when TPR = 1).
const PARTIAL: u32 = select(1u, WG * TT * DOTS, TPR > 1u);
var<workgroup> partial: array<f32, PARTIAL>;

// Where the activations of each token of the tile start in x.
var<private> xt: array<u32, TT>;

// Activation c of the tile's token t.
fn x1(t: u32, c: u32) -> f32 {
    let i = xt[t] + c;
    return x[i >> 2u][i & 3u];
}

// Activations c..c+4 of token t; c is a multiple of 4 (quant files only ask for such runs).
fn x4(t: u32, c: u32) -> vec4<f32> {
    return x[(xt[t] + c) >> 2u];
}

// This invocation's share (items lane, lane + TPR, ...) of the dots of row r with the tile.
fn row_dots(r: u32, lane: u32) -> Acc {
    var acc = Acc();
    let items = n_items(p.n_cols);
    let rb = r * p.row_bytes;
    for (var i = lane; i < items; i += TPR) {
        acc += item_dot(rb, i, p.n_cols);
    }
    return acc;
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    // SUBGROUP BUILTINS
) {
    // SUBGROUP SETUP
    let n = min(step.n_tokens, p.max_tokens);
    let t0 = wid.z * TT;
    let row0 = (wid.x + wid.y * nwg.x) * ROWS;
    if (t0 >= n || row0 >= p.n_rows) {
        return; // whole workgroup: the last grid row may be partly empty
    }
    xt = tile_bases(p.x_offset + t0 * p.x_stride, p.x_offset + (n - 1u) * p.x_stride, p.x_stride);
    let r = row0 + lid / TPR;
    let lane = lid % TPR;
    var acc = Acc();
    var up = Acc();
    if (r < p.n_rows) {
        acc = row_dots(r, lane);
        if (PAIRED) {
            up = row_dots(p.n_rows + r, lane);
        }
    }
    if (TPR > 1u) {
        reduce(acc, up, lid, lane); // reduce/<workgroup|subgroup>.wgsl
    }
    if (lane == 0u && r < p.n_rows) {
        for (var t = 0u; t < min(TT, n - t0); t++) {
            var y = tok(acc, t);
            var u = tok(up, t);
            if (TPR > 1u) {
                y = partial[t * WG + lid];
                if (PAIRED) {
                    u = partial[(TT + t) * WG + lid];
                }
            }
            emit(t0 + t, r, y, u);
        }
    }
}
