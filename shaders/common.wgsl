// common.wgsl: pure helpers prepended to every shader family. Declares no bindings.
//
// Packed data is read as u32 words; these unpack 4 bytes of a little-endian word into a
// vec4<f32>, byte k of the word going to component k.

// Half float in the low 16 bits of `h` (core WGSL, no `shader-f16` needed).
fn f16_bits(h: u32) -> f32 {
    return unpack2x16float(h & 0xffffu).x;
}

// bfloat16 in the low 16 bits of `h`: the top half of an f32.
fn bf16_bits(h: u32) -> f32 {
    return bitcast<f32>(h << 16u);
}

// The four bytes of `q`, unsigned.
fn bytes_u(q: u32) -> vec4<f32> {
    return vec4<f32>(vec4<u32>(q & 0xffu, (q >> 8u) & 0xffu, (q >> 16u) & 0xffu, q >> 24u));
}

// The four bytes of `q`, each a signed 8-bit integer.
fn bytes_i(q: u32) -> vec4<f32> {
    let s = bitcast<vec4<i32>>(vec4<u32>(q << 24u, q << 16u, q << 8u, q)) >> vec4<u32>(24u);
    return vec4<f32>(s);
}

// Low nibble of each byte.
fn nib_lo(q: u32) -> vec4<f32> {
    return bytes_u(q & 0x0f0f0f0fu);
}

// High nibble of each byte.
fn nib_hi(q: u32) -> vec4<f32> {
    return bytes_u((q >> 4u) & 0x0f0f0f0fu);
}

// Bits `shift`, `shift + 1` of each byte (2-bit quants).
fn crumbs(q: u32, shift: u32) -> vec4<f32> {
    return bytes_u((q >> shift) & 0x03030303u);
}

// Bit `shift` of each byte.
fn bits(q: u32, shift: u32) -> vec4<f32> {
    return bytes_u((q >> shift) & 0x01010101u);
}

// Bits 4k..4k+3 of `q` spread over four lanes (Q5_0/Q5_1 high bits of four consecutive values).
fn nibble_bits(q: u32, k: u32) -> vec4<f32> {
    let h = q >> (4u * k);
    return vec4<f32>(vec4<u32>(h & 1u, (h >> 1u) & 1u, (h >> 2u) & 1u, (h >> 3u) & 1u));
}

// x rounded to the nearest f16 and back (core WGSL's pack2x16float; |x| must be in f16's range).
fn round_f16(x: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x;
}

// GELU, tanh approximation, as ggml's CPU computes it: through its table of f16 values, so x is
// rounded to f16, gelu computed in f32 and rounded to f16 again; 0 at or below -10 and x itself
// at or above 10 (where the table's callers stop using it).
fn gelu_f16_table(x: f32) -> f32 {
    if (x <= -10.0) {
        return 0.0;
    }
    if (x >= 10.0) {
        return x;
    }
    let h = round_f16(x);
    let g = 0.5 * h * (1.0 + tanh(0.7978845608028654 * h * (1.0 + 0.044715 * h * h)));
    return round_f16(g);
}

// cap * tanh(x / cap) (Gemma's soft-capping); the argument is clamped to +-10, where tanh is
// already 1 in f32, so no implementation's tanh overflows.
fn soft_cap(x: f32, cap: f32) -> f32 {
    return tanh(clamp(x * (1.0 / cap), -10.0, 10.0)) * cap;
}
