//! The K-quant weight quantizers, following ggml's `quantize_row_q{2,3,4,5,6}_K_ref` (no
//! importance matrix) and their helpers `make_qx_quants`, `make_q3_quants` and
//! `make_qkx2_quants` step by step, in f32 with the same operation order. (A C compiler may
//! contract some of ggml's multiply-adds into FMAs, so an exact byte match with a given
//! llama.cpp build is not guaranteed; these are used for tests and tools, not on model files.)

use super::blocks::*;
use super::kquants::{nearest_int, scale_min_k4};
use super::types::QK_K;

const GROUP_MAX_EPS: f32 = 1e-15;

/// Symmetric quantization of `x` to `-nmax..nmax-1` (stored with +nmax), searching 18 scales
/// around `nmax/max` for the best weighted fit (weights x^2, ggml's `rmse_type` 1).
fn make_qx_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let quant = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let fit = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0f32, 0f32);
        for &v in x {
            let l = quant(iscale, v) as f32;
            let w = v * v;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        (sumlx, suml2)
    };
    let mut iscale = -nmaxf / max;
    for (o, &v) in l_out.iter_mut().zip(x) {
        *o = (quant(iscale, v) + nmax) as i8;
    }
    let (sumlx, suml2) = fit(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmaxf + 0.1 * is as f32) / max;
        let (sumlx, suml2) = fit(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (o, &v) in l_out.iter_mut().zip(x) {
                *o = (quant(iscale, v) + nmax) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Symmetric quantization to `-nmax..nmax-1` refined value by value (ggml's `make_q3_quants`
/// with `do_rmse`); levels are returned with +nmax.
fn make_q3_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = (0f32, 0f32);
    for (o, &v) in l_out.iter_mut().zip(x) {
        let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        *o = l as i8;
        let w = v * v;
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (o, &v) in l_out.iter_mut().zip(x) {
            let w = v * v;
            let li = *o as f32;
            let mut slx = sumlx - w * v * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != *o as i32 {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *o = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for o in l_out.iter_mut() {
        *o += nmax as i8;
    }
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

/// Asymmetric quantization `x ≈ scale*l - min` with `l` in 0..=nmax, searching `nstep+1` scales
/// (ggml's `make_qkx2_quants`). Returns (scale, min) with min >= 0.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.fill(0);
        return (0.0, -min);
    }
    let err = |d: f32| if use_mad { d.abs() } else { d * d };
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        best_error += weights[i] * err(scale * l as f32 + min - x[i]);
    }
    if nstep < 1 {
        return (scale, -min);
    }
    let mut laux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = l as u8;
            let (w, lf) = (weights[i], l as f32);
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let dd = sum_w * sum_l2 - sum_l * sum_l;
        if dd > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / dd;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / dd;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                cur_error += weights[i] * err(this_scale * laux[i] as f32 + this_min - x[i]);
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Packs 256 two-bit levels as Q2_K/Q3_K do: byte `32h + l` holds values `128h + 32j + l`
/// at bits `2j`.
fn pack_2bit(l: &[u8; QK_K], qs: &mut [u8; QK_K / 4]) {
    for h in 0..2 {
        for i in 0..32 {
            let b = |j: usize| l[128 * h + 32 * j + i] << (2 * j);
            qs[32 * h + i] = b(0) | b(1) | b(2) | b(3);
        }
    }
}

pub fn quantize_q2_k(src: &[f32], dst: &mut [BlockQ2_K]) {
    const Q4SCALE: f32 = 15.0;
    for (x, y) in src.chunks_exact(QK_K).zip(dst.iter_mut()) {
        let mut l = [0u8; QK_K];
        let (mut scales, mut mins) = ([0f32; 16], [0f32; 16]);
        let (mut max_scale, mut max_min) = (0f32, 0f32);
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            let mut w = [0f32; 16];
            for (wi, v) in w.iter_mut().zip(xs) {
                *wi = v.abs();
            }
            (scales[j], mins[j]) = make_qkx2_quants(3, xs, &w, &mut l[16 * j..16 * j + 16], -0.5, 0.1, 15, true);
            max_scale = if scales[j] > max_scale { scales[j] } else { max_scale };
            max_min = if mins[j] > max_min { mins[j] } else { max_min };
        }
        if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for j in 0..16 {
                y.scales[j] = nearest_int(iscale * scales[j]) as u8;
            }
            y.d = f16_bytes(max_scale / Q4SCALE);
        } else {
            y.scales = [0; 16];
            y.d = f16_bytes(0.0);
        }
        if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for j in 0..16 {
                y.scales[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
            }
            y.dmin = f16_bytes(max_min / Q4SCALE);
        } else {
            y.dmin = f16_bytes(0.0);
        }
        for j in 0..16 {
            let d = f16_le(y.d) * (y.scales[j] & 0xf) as f32;
            if d == 0.0 {
                continue;
            }
            let dm = f16_le(y.dmin) * (y.scales[j] >> 4) as f32;
            for ii in 0..16 {
                l[16 * j + ii] = nearest_int((x[16 * j + ii] + dm) / d).clamp(0, 3) as u8;
            }
        }
        pack_2bit(&l, &mut y.qs);
    }
}

pub fn quantize_q3_k(src: &[f32], dst: &mut [BlockQ3_K]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.iter_mut()) {
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; 16];
        let (mut max_scale, mut amax) = (0f32, 0f32);
        for j in 0..16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
            if scales[j].abs() > amax {
                amax = scales[j].abs();
                max_scale = scales[j];
            }
        }
        y.scales = [0; 12];
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for j in 0..16 {
                let lv = ((nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32) as u8;
                if j < 8 {
                    y.scales[j] = lv & 0xf;
                } else {
                    y.scales[j - 8] |= (lv & 0xf) << 4;
                }
                y.scales[j % 4 + 8] |= (lv >> 4) << (2 * (j / 4));
            }
            y.d = f16_bytes(1.0 / iscale);
        } else {
            y.d = f16_bytes(0.0);
        }
        let sc = super::kquants::q3k_scales(&y.scales);
        for j in 0..16 {
            let d = f16_le(y.d) * sc[j] as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-4, 3) + 4) as i8;
            }
        }
        y.hmask = [0; QK_K / 8];
        let mut lu = [0u8; QK_K];
        for j in 0..QK_K {
            let mut v = l[j] as u8;
            if v > 3 {
                y.hmask[j % 32] |= 1 << (j / 32);
                v -= 4;
            }
            lu[j] = v;
        }
        pack_2bit(&lu, &mut y.qs);
    }
}

/// The shared part of Q4_K and Q5_K: per 32-value sub-block scales and mins from
/// `make_qkx2_quants`, packed to 6 bits, then the levels recomputed from the packed scales.
#[allow(clippy::too_many_arguments)]
fn quantize_k_sub32(
    x: &[f32],
    nmax: i32,
    rmin: f32,
    nstep: i32,
    d_out: &mut [u8; 2],
    dmin_out: &mut [u8; 2],
    packed: &mut [u8; K_SCALE_SIZE],
    l: &mut [u8; QK_K],
) {
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2 = xs.iter().fold(0f32, |s, v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let mut w = [0f32; 32];
        for (wi, v) in w.iter_mut().zip(xs) {
            *wi = av_x + v.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(nmax, xs, &w, &mut l[32 * j..32 * j + 32], rmin, 0.1, nstep, false);
        max_scale = if scales[j] > max_scale { scales[j] } else { max_scale };
        max_min = if mins[j] > max_min { mins[j] } else { max_min };
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
            packed[j - 4] |= (ls >> 4) << 6;
            packed[j] |= (lm >> 4) << 6;
        }
    }
    *d_out = f16_bytes(max_scale / 63.0);
    *dmin_out = f16_bytes(max_min / 63.0);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, packed);
        let d = f16_le(*d_out) * sc as f32;
        if d == 0.0 {
            continue;
        }
        let dm = f16_le(*dmin_out) * m as f32;
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / d).clamp(0, nmax) as u8;
        }
    }
}

pub fn quantize_q4_k(src: &[f32], dst: &mut [BlockQ4_K]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.iter_mut()) {
        let mut l = [0u8; QK_K];
        y.scales = [0; K_SCALE_SIZE];
        quantize_k_sub32(x, 15, -1.0, 20, &mut y.d, &mut y.dmin, &mut y.scales, &mut l);
        for c in 0..4 {
            for i in 0..32 {
                y.qs[32 * c + i] = l[64 * c + i] | (l[64 * c + 32 + i] << 4);
            }
        }
    }
}

pub fn quantize_q5_k(src: &[f32], dst: &mut [BlockQ5_K]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.iter_mut()) {
        let mut l = [0u8; QK_K];
        y.scales = [0; K_SCALE_SIZE];
        quantize_k_sub32(x, 31, -0.5, 15, &mut y.d, &mut y.dmin, &mut y.scales, &mut l);
        y.qh = [0; QK_K / 8];
        for c in 0..4 {
            for i in 0..32 {
                let (mut l1, mut l2) = (l[64 * c + i], l[64 * c + 32 + i]);
                if l1 > 15 {
                    l1 -= 16;
                    y.qh[i] |= 1 << (2 * c);
                }
                if l2 > 15 {
                    l2 -= 16;
                    y.qh[i] |= 2 << (2 * c);
                }
                y.qs[32 * c + i] = l1 | (l2 << 4);
            }
        }
    }
}

pub fn quantize_q6_k(src: &[f32], dst: &mut [BlockQ6_K]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.iter_mut()) {
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; 16];
        let (mut max_scale, mut max_abs_scale) = (0f32, 0f32);
        for ib in 0..16 {
            scales[ib] = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16]);
            if scales[ib].abs() > max_abs_scale {
                max_abs_scale = scales[ib].abs();
                max_scale = scales[ib];
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            *y = bytemuck::Zeroable::zeroed();
            continue;
        }
        let iscale = -128.0 / max_scale;
        y.d = f16_bytes(1.0 / iscale);
        for ib in 0..16 {
            y.scales[ib] = nearest_int(iscale * scales[ib]).min(127) as i8;
        }
        for j in 0..16 {
            let d = f16_le(y.d) * y.scales[j] as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-32, 31) + 32) as i8;
            }
        }
        for h in 0..2 {
            for i in 0..32 {
                let v = |k: usize| l[128 * h + 32 * k + i] as u8;
                y.ql[64 * h + i] = (v(0) & 0xf) | ((v(2) & 0xf) << 4);
                y.ql[64 * h + 32 + i] = (v(1) & 0xf) | ((v(3) & 0xf) << 4);
                y.qh[32 * h + i] = (v(0) >> 4) | ((v(1) >> 4) << 2) | ((v(2) >> 4) << 4) | ((v(3) >> 4) << 6);
            }
        }
    }
}
