//! Interim F32/F16 kernels so the forward pass can be tested while the full quant module is
//! written; replaced by the real module on merge.

use super::{GgmlType, QuantError};
use half::f16;

fn check(ty: GgmlType, n: usize, bytes: usize) -> Result<(), QuantError> {
    let expected = ty.row_bytes(n).ok_or(QuantError::PartialBlock { ty, n, block: ty.block_size() })?;
    if expected != bytes {
        return Err(QuantError::WrongLength { ty, expected, got: bytes });
    }
    Ok(())
}

pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    check(ty, dst.len(), src.len())?;
    match ty {
        GgmlType::F32 => dst.iter_mut().zip(src.chunks_exact(4)).for_each(|(d, c)| *d = f32::from_le_bytes(c.try_into().unwrap())),
        GgmlType::F16 => dst.iter_mut().zip(src.chunks_exact(2)).for_each(|(d, c)| *d = f16::from_le_bytes(c.try_into().unwrap()).to_f32()),
        _ => return Err(QuantError::NotApplicable(ty)),
    }
    Ok(())
}

pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    check(ty, src.len(), dst.len())?;
    match ty {
        GgmlType::F32 => dst.chunks_exact_mut(4).zip(src).for_each(|(d, s)| d.copy_from_slice(&s.to_le_bytes())),
        GgmlType::F16 => dst.chunks_exact_mut(2).zip(src).for_each(|(d, s)| d.copy_from_slice(&f16::from_f32(*s).to_le_bytes())),
        _ => return Err(QuantError::NotApplicable(ty)),
    }
    Ok(())
}

pub fn vec_dot_type(ty: GgmlType) -> GgmlType {
    match ty {
        GgmlType::F16 => GgmlType::F16,
        _ => GgmlType::F32,
    }
}

pub fn vec_dot(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> f32 {
    let mut a = vec![0f32; n];
    let mut b = vec![0f32; n];
    dequantize_row(ty, w, &mut a).unwrap();
    dequantize_row(vec_dot_type(ty), act, &mut b).unwrap();
    a.iter().zip(&b).map(|(x, y)| x * y).sum()
}
