//! The public entry points: one `match` per operation from `GgmlType` to the format's kernel.

use super::blocks::{as_blocks, as_blocks_mut};
use super::{GgmlType, QuantError};
#[cfg(target_arch = "x86_64")]
use super::{avx2, avx2_rows};
use super::{float, kquants, kquants_dot as kd, kquants_ref, legacy, legacy_dot as ld};
use GgmlType::*;

/// Checks that `bytes` holds exactly `n` values of `ty`.
fn check(ty: GgmlType, n: usize, bytes: usize) -> Result<(), QuantError> {
    let expected = ty.row_bytes(n).ok_or(QuantError::PartialBlock { ty, n, block: ty.block_size() })?;
    if bytes != expected {
        return Err(QuantError::WrongLength { ty, expected, got: bytes });
    }
    Ok(())
}

/// Dequantize `dst.len()` values from `src` (exactly `row_bytes(dst.len())` bytes),
/// bit-identical to ggml's `dequantize_row_*` (and F16/BF16/F32 conversions).
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    check(ty, dst.len(), src.len())?;
    match ty {
        F32 => float::dequantize_f32(src, dst),
        F16 => float::dequantize_f16(src, dst),
        BF16 => float::dequantize_bf16(src, dst),
        Q4_0 => legacy::dequantize_q4_0(as_blocks(src), dst),
        Q4_1 => legacy::dequantize_q4_1(as_blocks(src), dst),
        Q5_0 => legacy::dequantize_q5_0(as_blocks(src), dst),
        Q5_1 => legacy::dequantize_q5_1(as_blocks(src), dst),
        Q8_0 => legacy::dequantize_q8_0(as_blocks(src), dst),
        Q8_1 => legacy::dequantize_q8_1(as_blocks(src), dst),
        Q2_K => kquants::dequantize_q2_k(as_blocks(src), dst),
        Q3_K => kquants::dequantize_q3_k(as_blocks(src), dst),
        Q4_K => kquants::dequantize_q4_k(as_blocks(src), dst),
        Q5_K => kquants::dequantize_q5_k(as_blocks(src), dst),
        Q6_K => kquants::dequantize_q6_k(as_blocks(src), dst),
        Q8_K => kquants::dequantize_q8_k(as_blocks(src), dst),
    }
    Ok(())
}

/// Quantize with ggml's reference algorithm (`quantize_row_*_ref`); `dst` must be
/// `row_bytes(src.len())` long.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    check(ty, src.len(), dst.len())?;
    match ty {
        F32 => float::quantize_f32(src, dst),
        F16 => float::quantize_f16(src, dst),
        BF16 => float::quantize_bf16(src, dst),
        Q4_0 => legacy::quantize_q4_0(src, as_blocks_mut(dst)),
        Q4_1 => legacy::quantize_q4_1(src, as_blocks_mut(dst)),
        Q5_0 => legacy::quantize_q5_0(src, as_blocks_mut(dst)),
        Q5_1 => legacy::quantize_q5_1(src, as_blocks_mut(dst)),
        Q8_0 => legacy::quantize_q8_0(src, as_blocks_mut(dst)),
        Q8_1 => legacy::quantize_q8_1(src, as_blocks_mut(dst)),
        Q2_K => kquants_ref::quantize_q2_k(src, as_blocks_mut(dst)),
        Q3_K => kquants_ref::quantize_q3_k(src, as_blocks_mut(dst)),
        Q4_K => kquants_ref::quantize_q4_k(src, as_blocks_mut(dst)),
        Q5_K => kquants_ref::quantize_q5_k(src, as_blocks_mut(dst)),
        Q6_K => kquants_ref::quantize_q6_k(src, as_blocks_mut(dst)),
        Q8_K => kquants::quantize_q8_k(src, as_blocks_mut(dst)),
    }
    Ok(())
}

/// Quantize an activation row the way llama.cpp's CPU backend does on x86-64 with AVX/AVX2
/// (the build the fixture goldens come from): for Q8_0 and Q8_1 that is ggml-cpu's SIMD
/// `quantize_row_q8_0/q8_1` (multiplier `127/amax`, round half to even), which can differ from
/// [`quantize_row`]'s reference rounding in the last step of a few values; every other type
/// (Q8_K included, which ggml-cpu quantizes with the reference code) is [`quantize_row`].
/// llama.cpp's weight repacking (Q4_0 -> q4_0_8x8, Q4_K -> q4_K_8x8 on AVX2) quantizes batched
/// activations 4 rows at a time with `ggml_quantize_mat_q8_{0,K}_4x8`; those round the same way
/// (Q8_0 as here, Q8_K as the reference except when +amax and -amax both occur in a block).
pub fn quantize_row_cpu(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    check(ty, src.len(), dst.len())?;
    match ty {
        Q8_0 => legacy::quantize_q8_0_x86(src, as_blocks_mut(dst)),
        Q8_1 => legacy::quantize_q8_1_x86(src, as_blocks_mut(dst)),
        _ => return quantize_row(ty, src, dst),
    }
    Ok(())
}

/// The type activations are quantized to before a dot product with a `ty` weight row, as
/// ggml's CPU backend does: Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for all
/// K-quants, F16 for F16, BF16 for BF16, F32 for F32. (Q8_1 and Q8_K, which ggml only uses
/// as activation types, pair with themselves.)
pub fn vec_dot_type(ty: GgmlType) -> GgmlType {
    match ty {
        F32 => F32,
        F16 => F16,
        BF16 => BF16,
        Q4_0 | Q5_0 | Q8_0 => Q8_0,
        Q4_1 | Q5_1 | Q8_1 => Q8_1,
        Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | Q8_K => Q8_K,
    }
}

/// Checks the lengths [`vec_dot`] relies on (do it once when a model is loaded, not per call).
pub fn check_vec_dot(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> Result<(), QuantError> {
    check(ty, n, w.len())?;
    check(vec_dot_type(ty), n, act.len())
}

/// Dot product of `n` values: `w` is one weight row in `ty`, `act` the activation row already
/// quantized to `vec_dot_type(ty)`. Same math as ggml's `ggml_vec_dot_*` (integer sums per
/// block, then scaled). Lengths are only debug-asserted; a short slice panics.
///
/// On x86-64 CPUs with AVX2 (checked once, cached by std) this runs the same kernels compiled
/// with AVX2/FMA/F16C enabled; Rust never fuses a multiply and an add on its own, so both builds
/// give bit-identical results ([`vec_dot_portable`] is the baseline build).
#[inline]
pub fn vec_dot(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert_eq!(check_vec_dot(ty, n, w, act), Ok(()));
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("f16c")
    {
        // SAFETY: the features these functions are compiled for were just detected.
        return unsafe {
            let (ws, acts) = slices(ty, n, w, act);
            match ty {
                F16 => float::vec_dot_f16_f16c(n, w, act),
                Q4_0 => avx2::dot_q4_0_q8_0(as_blocks(ws), as_blocks(acts)),
                Q4_1 => avx2::dot_q4_1_q8_1(as_blocks(ws), as_blocks(acts)),
                Q5_0 => avx2::dot_q5_0_q8_0(as_blocks(ws), as_blocks(acts)),
                Q5_1 => avx2::dot_q5_1_q8_1(as_blocks(ws), as_blocks(acts)),
                Q8_0 => avx2::dot_q8_0_q8_0(as_blocks(ws), as_blocks(acts)),
                Q2_K => avx2::dot_q2_k_q8_k(as_blocks(ws), as_blocks(acts)),
                Q3_K => avx2::dot_q3_k_q8_k(as_blocks(ws), as_blocks(acts)),
                Q4_K => avx2::dot_q4_k_q8_k(as_blocks(ws), as_blocks(acts)),
                Q5_K => avx2::dot_q5_k_q8_k(as_blocks(ws), as_blocks(acts)),
                Q6_K => avx2::dot_q6_k_q8_k(as_blocks(ws), as_blocks(acts)),
                _ => vec_dot_avx2(ty, n, w, act),
            }
        };
    }
    vec_dot_kernels(ty, n, w, act)
}

/// out[r] = row r of `w` · `act`, for `out.len()` rows of `n` values (`row_bytes(n)` bytes each)
/// in `ty`, and `act` in `vec_dot_type(ty)`: the matrix-vector product the CPU matmul is made of.
/// Q4_0 takes four rows per pass on AVX2 (see `avx2_rows`); other types run
/// [`vec_dot`] per row.
pub fn matvec(ty: GgmlType, n: usize, w: &[u8], act: &[u8], out: &mut [f32]) {
    let row_bytes = ty.row_bytes(n).expect("whole blocks");
    assert_eq!(w.len(), row_bytes * out.len(), "matvec: weight bytes for {} rows", out.len());
    debug_assert_eq!(check(vec_dot_type(ty), n, act.len()), Ok(()));
    #[cfg(target_arch = "x86_64")]
    if ty == Q4_0
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("f16c")
    {
        // SAFETY: features detected just above; lengths asserted above.
        unsafe { avx2_rows::matvec_q4_0(w, row_bytes, as_blocks(act), out) }
        return;
    }
    for (r, o) in out.iter_mut().enumerate() {
        *o = vec_dot(ty, n, &w[r * row_bytes..(r + 1) * row_bytes], act);
    }
}

/// [`vec_dot`] compiled for the baseline target only (SSE2 on x86-64, simd128 on wasm when
/// enabled), for tests and benchmarks.
pub fn vec_dot_portable(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> f32 {
    vec_dot_kernels(ty, n, w, act)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_avx2(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> f32 {
    vec_dot_kernels(ty, n, w, act)
}

/// The fast kernels, inlined into each build of [`vec_dot`].
#[inline(always)]
fn vec_dot_kernels(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> f32 {
    let (w, act) = slices(ty, n, w, act);
    match ty {
        F32 => float::vec_dot_f32(n, w, act),
        F16 => float::vec_dot_f16(n, w, act),
        BF16 => float::vec_dot_bf16(n, w, act),
        Q4_0 => ld::dot_q4_0_q8_0(as_blocks(w), as_blocks(act)),
        Q4_1 => ld::dot_q4_1_q8_1(as_blocks(w), as_blocks(act)),
        Q5_0 => ld::dot_q5_0_q8_0(as_blocks(w), as_blocks(act)),
        Q5_1 => ld::dot_q5_1_q8_1(as_blocks(w), as_blocks(act)),
        Q8_0 => ld::dot_q8_0_q8_0(as_blocks(w), as_blocks(act)),
        Q8_1 => ld::dot_q8_1_q8_1(as_blocks(w), as_blocks(act)),
        Q2_K => kd::dot_q2_k_q8_k(as_blocks(w), as_blocks(act)),
        Q3_K => kd::dot_q3_k_q8_k(as_blocks(w), as_blocks(act)),
        Q4_K => kd::dot_q4_k_q8_k(as_blocks(w), as_blocks(act)),
        Q5_K => kd::dot_q5_k_q8_k(as_blocks(w), as_blocks(act)),
        Q6_K => kd::dot_q6_k_q8_k(as_blocks(w), as_blocks(act)),
        Q8_K => kd::dot_q8_k_q8_k(as_blocks(w), as_blocks(act)),
    }
}

/// The plain scalar twin of [`vec_dot`]: value-by-value code that tests hold the fast kernels
/// to, bit for bit.
pub fn vec_dot_scalar(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> f32 {
    let (w, act) = slices(ty, n, w, act);
    match ty {
        F32 => float::vec_dot_f32_scalar(n, w, act),
        F16 => float::vec_dot_f16_scalar(n, w, act),
        BF16 => float::vec_dot_bf16_scalar(n, w, act),
        Q4_0 => ld::dot_q4_0_q8_0_scalar(as_blocks(w), as_blocks(act)),
        Q4_1 => ld::dot_q4_1_q8_1_scalar(as_blocks(w), as_blocks(act)),
        Q5_0 => ld::dot_q5_0_q8_0_scalar(as_blocks(w), as_blocks(act)),
        Q5_1 => ld::dot_q5_1_q8_1_scalar(as_blocks(w), as_blocks(act)),
        Q8_0 => ld::dot_q8_0_q8_0_scalar(as_blocks(w), as_blocks(act)),
        Q8_1 => ld::dot_q8_1_q8_1_scalar(as_blocks(w), as_blocks(act)),
        Q2_K => kd::dot_q2_k_q8_k_scalar(as_blocks(w), as_blocks(act)),
        Q3_K => kd::dot_q3_k_q8_k_scalar(as_blocks(w), as_blocks(act)),
        Q4_K => kd::dot_q4_k_q8_k_scalar(as_blocks(w), as_blocks(act)),
        Q5_K => kd::dot_q5_k_q8_k_scalar(as_blocks(w), as_blocks(act)),
        Q6_K => kd::dot_q6_k_q8_k_scalar(as_blocks(w), as_blocks(act)),
        Q8_K => kd::dot_q8_k_q8_k_scalar(as_blocks(w), as_blocks(act)),
    }
}

/// The exact byte ranges of the two rows (panics on short input, like slicing does).
#[inline(always)]
fn slices<'a>(ty: GgmlType, n: usize, w: &'a [u8], act: &'a [u8]) -> (&'a [u8], &'a [u8]) {
    let wb = n / ty.block_size() * ty.type_size();
    let at = vec_dot_type(ty);
    let ab = n / at.block_size() * at.type_size();
    (&w[..wb], &act[..ab])
}
