// embed.wgsl: embedding lookup, out[out_offset + t * n_cols + c] = W[ids[t]][c] * scale, for
// t < n_tokens, the rows dequantized with the block decoders of quant/<type>.wgsl (scale: 1, or
// Gemma's sqrt(n_embd)).
// Assembled as: common.wgsl + quant/weights.wgsl + quant/<type>.wgsl + tile/1.wgsl + this file.
// The quant files only offer `item_dot(row_byte, item, n)` (the dot of one work item with the
// activations they read through x4/x1, for the tile's one token); here x4/x1 return a one-hot
// vector at `probe`, so item_dot returns the single value `probe` of the row: every product but
// one is an exact 0, so the value is the decoder's d * q (- m) rounded as in matvec. Costs ITEM
// (4 or 32) times the arithmetic of a plain decode, which is nothing next to a matvec over the
// same table.
//
// Bindings (group 0):
//   0  w     storage, read        array<u32>  one weight piece: rows row0..row0 + n_rows
//   1  ids   storage, read        array<u32>  token ids
//   2  out   storage, read_write  array<f32>
//   3  p     uniform              Params
//   4  step  uniform              Step (n_tokens)
// Knobs: WG = 64 invocations, one output value each.
// Dispatch: ceil(n_tokens * n_cols / 64) workgroups on a 2-D grid (x <= 65535), once per weight
//   piece; ids outside the piece are skipped, ids outside the table give a zero row (piece 0).

struct Params {
    n_rows: u32,
    row0: u32,
    n_cols: u32,
    row_bytes: u32,
    out_offset: u32,
    total_rows: u32,
    first_piece: u32,
    scale: f32,
}

struct Step {
    n_tokens: u32,
    pos0: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> step: Step;

var<private> probe: u32;

fn x1(t: u32, i: u32) -> f32 {
    return select(0.0, 1.0, i == probe);
}

fn x4(t: u32, i: u32) -> vec4<f32> {
    return select(vec4<f32>(0.0), vec4<f32>(1.0), vec4<u32>(probe - i) == vec4<u32>(0u, 1u, 2u, 3u));
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
    let t = idx / p.n_cols;
    let c = idx % p.n_cols;
    if (t >= step.n_tokens) {
        return;
    }
    let id = ids[t];
    let o = p.out_offset + t * p.n_cols + c;
    if (id >= p.total_rows) {
        if (p.first_piece != 0u) {
            out[o] = 0.0;
        }
        return;
    }
    if (id < p.row0 || id - p.row0 >= p.n_rows) {
        return;
    }
    probe = c;
    out[o] = item_dot((id - p.row0) * p.row_bytes, c / ITEM, p.n_cols) * p.scale;
}
