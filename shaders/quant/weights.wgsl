// quant/weights.wgsl: byte, halfword and word fetches from GGUF block bytes, prepended to every
// family that reads quantized weights. Expects the family to declare
//   var<storage, read> w: array<u32>;   // the tensor's bytes as GGUF stores them, padded to 4,
//                                       // plus one more zero word (so w[i + 1] always exists)
// Blocks are not 4-byte aligned (Q4_0 is 18 bytes), so every fetch takes a byte offset. The
// fetches are branch-free: neighbouring invocations often disagree on alignment.
// The quant/<type>.wgsl files that follow return their dot products as a tile file's `Acc`
// (shaders/tile/<TT>.wgsl: one f32 per token), made with its xdot/xsum/xmul.

// Byte at byte offset `b`.
fn w_u8(b: u32) -> u32 {
    return (w[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
}

// Little-endian u32 at byte offset `b` (any alignment). The second shift is split in two so
// that sh = 0 shifts the next word out entirely (WGSL shifts by 32 are not allowed).
fn w_u32(b: u32) -> u32 {
    let i = b >> 2u;
    let sh = (b & 3u) * 8u;
    return (w[i] >> sh) | ((w[i + 1u] << (31u - sh)) << 1u);
}

// Little-endian u16 at byte offset `b` (any alignment).
fn w_u16(b: u32) -> u32 {
    return w_u32(b) & 0xffffu;
}

// IEEE half at byte offset `b`.
fn w_f16(b: u32) -> f32 {
    return f16_bits(w_u16(b));
}

// ggml's get_scale_min_k4: 6-bit (scale, min) of sub-block j (0..8) from the 12 packed bytes
// at byte offset `s` (Q4_K, Q5_K).
fn scale_min_k4(s: u32, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(w_u8(s + j) & 63u), f32(w_u8(s + j + 4u) & 63u));
    }
    let a = w_u8(s + j + 4u);
    let lo = w_u8(s + j - 4u);
    let hi = w_u8(s + j);
    return vec2<f32>(f32((a & 0xfu) | ((lo >> 6u) << 4u)), f32((a >> 4u) | ((hi >> 6u) << 4u)));
}
