// quant/q3_k.wgsl: ggml block_q3_K, 110 bytes per 256 values: hmask[32] @0, qs[64] @32 (low 2
// bits), scales[12] @96 (16 signed 6-bit scales), d f16 @108.
// Value 128h + 32j + l = d * scale[8h + 2j + l / 16] * (((qs[32h + l] >> 2j) & 3)
//   - (bit 4h + j of hmask[l] ? 0 : 4)). Item: the 32 values of one (h, j).
const ITEM: u32 = 32u;

fn n_items(n: u32) -> u32 {
    return n / 32u;
}

// Scale s (0..16), minus 32, from the 12 packed bytes at byte offset `sb`.
fn q3_scale(sb: u32, s: u32) -> f32 {
    var low: u32;
    if (s < 8u) {
        low = w_u8(sb + s) & 15u;
    } else {
        low = w_u8(sb + s - 8u) >> 4u;
    }
    let high = (w_u8(sb + 8u + s % 4u) >> (2u * (s / 4u))) & 3u;
    return f32(i32(low | (high << 4u)) - 32);
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let b = rb + 110u * (i / 8u);
    let j = i % 8u;
    let h = j / 4u;
    let jj = j % 4u;
    let c = 32u * i;
    var s = Acc();
    for (var half = 0u; half < 2u; half++) {
        var sqx = Acc();
        for (var k = 0u; k < 4u; k++) {
            let l = 16u * half + 4u * k;
            let q = crumbs(w_u32(b + 32u + 32u * h + l), 2u * jj) + 4.0 * bits(w_u32(b + l), 4u * h + jj) - 4.0;
            sqx += xdot(q, c + l);
        }
        s += q3_scale(b + 96u, 8u * h + 2u * jj + half) * sqx;
    }
    return w_f16(b + 108u) * s;
}
