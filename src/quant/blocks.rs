//! Quant blocks laid out byte for byte as ggml's `block_*` structs (ggml-common.h), under ggml's
//! names. Every field is a byte array, so the structs have alignment 1 and a `&[u8]` of whole
//! blocks can be viewed as `&[BlockX]` wherever it sits in a file or buffer (`bytemuck`).
//! Multi-byte fields are little-endian, as in GGUF; `d`/`dmin`/`m`/`s` are IEEE half floats
//! except `BlockQ8_K::d`, which is an f32.

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::types::{GgmlType, QK_K};

pub const QK4_0: usize = 32;
pub const QK4_1: usize = 32;
pub const QK5_0: usize = 32;
pub const QK5_1: usize = 32;
pub const QK8_0: usize = 32;
pub const QK8_1: usize = 32;
/// Bytes of packed 6-bit scales/mins in Q4_K and Q5_K.
pub const K_SCALE_SIZE: usize = 12;

/// IEEE half to f32, exact, branch-free so it vectorizes (`half`'s own conversion asks the CPU
/// for F16C at every call). Moves exponent and mantissa into f32 position and rescales by
/// 2^112, which also makes half subnormals exact; infinities and NaNs (made quiet, as F16C and
/// `half` do) are patched in.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    let finite = (f32::from_bits(em << 13) * f32::from_bits(0x7780_0000)).to_bits();
    let man = em & 0x03ff;
    let special = 0x7f80_0000 | (man << 13) | (((man != 0) as u32) << 22);
    f32::from_bits(sign | if em >= 0x7c00 { special } else { finite })
}

/// Reads an IEEE half stored little-endian.
#[inline(always)]
pub fn f16_le(b: [u8; 2]) -> f32 {
    f16_to_f32(u16::from_le_bytes(b))
}

/// Stores an f32 as an IEEE half, rounding to nearest even (ggml's GGML_FP32_TO_FP16).
#[inline(always)]
pub fn f16_bytes(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_bits().to_le_bytes()
}

/// `d * q[i]`, 4-bit, offset 8.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_0 {
    pub d: [u8; 2],
    pub qs: [u8; QK4_0 / 2],
}

/// `d * q[i] + m`, 4-bit.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qs: [u8; QK4_1 / 2],
}

/// `d * q[i]`, 5-bit, offset 16; bit 4 of value `j` is bit `j` of the little-endian `qh`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5_0 {
    pub d: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; QK5_0 / 2],
}

/// `d * q[i] + m`, 5-bit.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; QK5_1 / 2],
}

/// `d * q[i]`, signed 8-bit.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ8_0 {
    pub d: [u8; 2],
    pub qs: [i8; QK8_0],
}

/// Q8_0 plus `s = d * sum(qs)`, used as the activation type of Q4_1/Q5_1.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ8_1 {
    pub d: [u8; 2],
    pub s: [u8; 2],
    pub qs: [i8; QK8_1],
}

/// 2-bit super-block: 16 sub-blocks of 16, 4-bit scale and 4-bit min per sub-block.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ2_K {
    pub scales: [u8; QK_K / 16],
    pub qs: [u8; QK_K / 4],
    pub d: [u8; 2],
    pub dmin: [u8; 2],
}

/// 3-bit super-block: low 2 bits in `qs`, high bit in `hmask`, 16 signed 6-bit scales.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ3_K {
    pub hmask: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 4],
    pub scales: [u8; 12],
    pub d: [u8; 2],
}

/// 4-bit super-block: 8 sub-blocks of 32, 6-bit scales and mins packed in 12 bytes.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_K {
    pub d: [u8; 2],
    pub dmin: [u8; 2],
    pub scales: [u8; K_SCALE_SIZE],
    pub qs: [u8; QK_K / 2],
}

/// 5-bit super-block: Q4_K plus one high bit per value in `qh`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5_K {
    pub d: [u8; 2],
    pub dmin: [u8; 2],
    pub scales: [u8; K_SCALE_SIZE],
    pub qh: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 2],
}

/// 6-bit super-block: low 4 bits in `ql`, high 2 in `qh`, 16 signed 8-bit scales, offset 32.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ6_K {
    pub ql: [u8; QK_K / 2],
    pub qh: [u8; QK_K / 4],
    pub scales: [i8; QK_K / 16],
    pub d: [u8; 2],
}

/// Activation type of the K-quants: f32 scale, 8-bit values, sums of each 16 values.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ8_K {
    pub d: [u8; 4],
    pub qs: [i8; QK_K],
    pub bsums: [[u8; 2]; QK_K / 16],
}

impl BlockQ8_K {
    #[inline(always)]
    pub fn d(&self) -> f32 {
        f32::from_le_bytes(self.d)
    }
    #[inline(always)]
    pub fn bsum(&self, j: usize) -> i16 {
        i16::from_le_bytes(self.bsums[j])
    }
}

/// A type that is one ggml block.
pub trait Block: Pod {
    const TYPE: GgmlType;
}

macro_rules! blocks {
    ($($b:ident => $t:ident),* $(,)?) => {$(
        impl Block for $b {
            const TYPE: GgmlType = GgmlType::$t;
        }
        const _: () = assert!(std::mem::size_of::<$b>() == GgmlType::$t.type_size());
        const _: () = assert!(std::mem::align_of::<$b>() == 1);
    )*};
}

blocks!(
    BlockQ4_0 => Q4_0, BlockQ4_1 => Q4_1, BlockQ5_0 => Q5_0, BlockQ5_1 => Q5_1,
    BlockQ8_0 => Q8_0, BlockQ8_1 => Q8_1, BlockQ2_K => Q2_K, BlockQ3_K => Q3_K,
    BlockQ4_K => Q4_K, BlockQ5_K => Q5_K, BlockQ6_K => Q6_K, BlockQ8_K => Q8_K,
);

/// Views whole blocks; the caller has checked the length (a mismatch is a bug, hence the panic).
#[inline(always)]
pub fn as_blocks<B: Block>(bytes: &[u8]) -> &[B] {
    bytemuck::cast_slice(bytes)
}

#[inline(always)]
pub fn as_blocks_mut<B: Block>(bytes: &mut [u8]) -> &mut [B] {
    bytemuck::cast_slice_mut(bytes)
}
