//! Parsing a GGUF header from bytes, with every count and length checked before it is trusted.

use super::GgufError;
use super::value::{Array, Metadata, Value, value_type as vt};
use crate::quant::GgmlType;
use std::collections::HashSet;

pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most 4 dimensions.
const MAX_DIMS: u32 = 4;
/// Nested arrays deeper than this are refused (real files use depth 1).
const MAX_ARRAY_DEPTH: u32 = 4;

/// One tensor's description. `dims` is in GGUF order: `dims[0]` is the row length.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Row length (ne0) and number of rows (the product of the other dimensions).
    pub fn rows_cols(&self) -> (usize, usize) {
        let cols = self.dims.first().copied().unwrap_or(1) as usize;
        let rows = self.dims.iter().skip(1).product::<u64>() as usize;
        (rows, cols)
    }
}

/// A parsed GGUF header. Tensor data lives at `data_offset + tensor.offset` in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Gguf {
    pub version: u32,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
}

impl Gguf {
    /// Parses a whole file and checks that every tensor's data lies inside it.
    pub fn parse(file: &[u8]) -> Result<Gguf, GgufError> {
        let gguf = Self::parse_header(file, Some(file.len() as u64))?;
        gguf.check_data_fits(file.len() as u64)?;
        Ok(gguf)
    }

    /// Parses the header from the first bytes of a file. `file_len`, when known, bounds counts
    /// and lengths; `Truncated` means `bytes` ends before the header does.
    pub fn parse_header(bytes: &[u8], file_len: Option<u64>) -> Result<Gguf, GgufError> {
        let limit = file_len.unwrap_or(u64::MAX).max(bytes.len() as u64);
        let mut r = Cursor { bytes, pos: 0, limit };
        let magic: [u8; 4] = r.take(4)?.try_into().unwrap();
        if magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic(magic));
        }
        let version = r.u32()?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion(version));
        }
        // Each tensor info takes at least 8 (name len) + 4 + 8 + 4 + 8 bytes, each KV at least 8 + 4 + 1.
        let n_tensors = r.count("tensor count", 32)?;
        let n_kv = r.count("metadata count", 13)?;

        let mut metadata = Metadata::default();
        for _ in 0..n_kv {
            let key = r.string()?;
            let ty = r.u32()?;
            let value = r.value(&key, ty, 0)?;
            if metadata.contains(&key) {
                return Err(GgufError::DuplicateKey(key));
            }
            metadata.insert(key, value);
        }

        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_i64() {
                Some(a) if a > 0 && (a as u64).is_power_of_two() => a as u64,
                _ => {
                    return Err(GgufError::BadMetadata {
                        key: "general.alignment".into(),
                        reason: format!("{v:?} is not a positive power of two"),
                    });
                }
            },
        };

        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut names = HashSet::new();
        for _ in 0..n_tensors {
            let t = r.tensor_info(alignment)?;
            if !names.insert(t.name.clone()) {
                return Err(GgufError::DuplicateTensor(t.name));
            }
            tensors.push(t);
        }
        let data_offset = r.pos.div_ceil(alignment) * alignment;
        let gguf = Gguf { version, metadata, tensors, alignment, data_offset };
        gguf.check_no_overlap()?;
        Ok(gguf)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Absolute byte range of a tensor's data in the file.
    pub fn tensor_range(&self, t: &TensorInfo) -> std::ops::Range<u64> {
        let start = self.data_offset + t.offset;
        start..start + t.n_bytes
    }

    /// A tensor's bytes, given the whole file (checked by `parse`).
    pub fn tensor_bytes<'a>(&self, file: &'a [u8], t: &TensorInfo) -> &'a [u8] {
        let r = self.tensor_range(t);
        &file[r.start as usize..r.end as usize]
    }

    /// End of the last tensor's data: the smallest valid file length.
    pub fn data_end(&self) -> u64 {
        self.tensors.iter().map(|t| self.tensor_range(t).end).max().unwrap_or(self.data_offset)
    }

    pub fn check_data_fits(&self, file_len: u64) -> Result<(), GgufError> {
        for t in &self.tensors {
            let end = self.tensor_range(t).end;
            if end > file_len {
                return Err(GgufError::TensorOutOfBounds { name: t.name.clone(), end, len: file_len });
            }
        }
        Ok(())
    }

    fn check_no_overlap(&self) -> Result<(), GgufError> {
        let mut order: Vec<&TensorInfo> = self.tensors.iter().collect();
        order.sort_by_key(|t| t.offset);
        for pair in order.windows(2) {
            if pair[0].offset + pair[0].n_bytes > pair[1].offset {
                return Err(GgufError::TensorsOverlap { a: pair[0].name.clone(), b: pair[1].name.clone() });
            }
        }
        Ok(())
    }
}

/// A bounds-checked little-endian reader. `limit` is the known (or assumed) file length, used to
/// refuse counts that could not possibly fit before anything is allocated for them.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: u64,
    limit: u64,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], GgufError> {
        let available = self.bytes.len() as u64 - self.pos;
        if n > available {
            return Err(GgufError::Truncated { offset: self.pos, needed: n - available });
        }
        let s = &self.bytes[self.pos as usize..(self.pos + n) as usize];
        self.pos += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        Ok(self.take(N as u64)?.try_into().unwrap())
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }

    /// A u64 count of items of at least `min_item_bytes` each, refused if they cannot fit.
    fn count(&mut self, what: &'static str, min_item_bytes: u64) -> Result<u64, GgufError> {
        let offset = self.pos;
        let n = self.u64()?;
        let room = self.limit.saturating_sub(self.pos);
        if n.checked_mul(min_item_bytes).is_none_or(|b| b > room) {
            return Err(GgufError::Implausible { what, count: n, offset });
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let len = self.count("string length", 1)?;
        let offset = self.pos;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| GgufError::BadUtf8 { offset })
    }

    fn value(&mut self, key: &str, ty: u32, depth: u32) -> Result<Value, GgufError> {
        Ok(match ty {
            vt::U8 => Value::U8(self.arr::<1>()?[0]),
            vt::I8 => Value::I8(self.arr::<1>()?[0] as i8),
            vt::U16 => Value::U16(u16::from_le_bytes(self.arr()?)),
            vt::I16 => Value::I16(i16::from_le_bytes(self.arr()?)),
            vt::U32 => Value::U32(self.u32()?),
            vt::I32 => Value::I32(i32::from_le_bytes(self.arr()?)),
            vt::U64 => Value::U64(self.u64()?),
            vt::I64 => Value::I64(i64::from_le_bytes(self.arr()?)),
            vt::F32 => Value::F32(f32::from_le_bytes(self.arr()?)),
            vt::F64 => Value::F64(f64::from_le_bytes(self.arr()?)),
            vt::BOOL => Value::Bool(self.bool(key)?),
            vt::STRING => Value::String(self.string()?),
            vt::ARRAY => Value::Array(self.array(key, depth)?),
            _ => return Err(GgufError::BadValueType { key: key.into(), ty }),
        })
    }

    fn bool(&mut self, key: &str) -> Result<bool, GgufError> {
        match self.arr::<1>()?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(GgufError::BadMetadata { key: key.into(), reason: format!("bool byte {b}") }),
        }
    }

    fn array(&mut self, key: &str, depth: u32) -> Result<Array, GgufError> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::BadMetadata { key: key.into(), reason: "arrays nested too deeply".into() });
        }
        let ty = self.u32()?;
        let min = match ty {
            vt::U8 | vt::I8 | vt::BOOL => 1,
            vt::U16 | vt::I16 => 2,
            vt::U32 | vt::I32 | vt::F32 => 4,
            vt::U64 | vt::I64 | vt::F64 | vt::STRING => 8,
            vt::ARRAY => 12,
            _ => return Err(GgufError::BadValueType { key: key.into(), ty }),
        };
        let n = self.count("array length", min)? as usize;
        macro_rules! prim {
            ($variant:ident, $t:ty) => {{
                let raw = self.take(n as u64 * min)?;
                Array::$variant(
                    raw.chunks_exact(min as usize).map(|c| <$t>::from_le_bytes(c.try_into().unwrap())).collect(),
                )
            }};
        }
        Ok(match ty {
            vt::U8 => Array::U8(self.take(n as u64)?.to_vec()),
            vt::I8 => Array::I8(self.take(n as u64)?.iter().map(|&b| b as i8).collect()),
            vt::U16 => prim!(U16, u16),
            vt::I16 => prim!(I16, i16),
            vt::U32 => prim!(U32, u32),
            vt::I32 => prim!(I32, i32),
            vt::U64 => prim!(U64, u64),
            vt::I64 => prim!(I64, i64),
            vt::F32 => prim!(F32, f32),
            vt::F64 => prim!(F64, f64),
            vt::BOOL => Array::Bool((0..n).map(|_| self.bool(key)).collect::<Result<_, _>>()?),
            vt::STRING => Array::String((0..n).map(|_| self.string()).collect::<Result<_, _>>()?),
            _ => Array::Array((0..n).map(|_| self.array(key, depth + 1)).collect::<Result<_, _>>()?),
        })
    }

    fn tensor_info(&mut self, alignment: u64) -> Result<TensorInfo, GgufError> {
        let name = self.string()?;
        let bad = |reason: String| GgufError::BadTensor { name: name.clone(), reason };
        let n_dims = self.u32()?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(bad(format!("{n_dims} dimensions (ggml allows 1 to {MAX_DIMS})")));
        }
        let dims = (0..n_dims).map(|_| self.u64()).collect::<Result<Vec<_>, _>>()?;
        let ty_id = self.u32()?;
        let offset = self.u64()?;
        let ty = GgmlType::from_id(ty_id).map_err(|source| GgufError::TensorType { name: name.clone(), source })?;
        if dims.iter().any(|&d| d == 0 || d > i64::MAX as u64) {
            return Err(bad(format!("invalid shape {dims:?}")));
        }
        let n_elements =
            dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).ok_or_else(|| bad("shape overflows".into()))?;
        let block = ty.block_size() as u64;
        if dims[0] % block != 0 {
            return Err(bad(format!("row length {} is not a multiple of the {ty} block size {block}", dims[0])));
        }
        let n_bytes = (n_elements / block)
            .checked_mul(ty.type_size() as u64)
            .filter(|&b| b <= self.limit)
            .ok_or_else(|| bad(format!("{n_elements} elements of {ty} cannot fit in the file")))?;
        if offset % alignment != 0 {
            return Err(bad(format!("data offset {offset} is not aligned to {alignment}")));
        }
        if offset.checked_add(n_bytes).is_none_or(|end| end > self.limit) {
            return Err(bad(format!("data offset {offset} is past the end of the file")));
        }
        Ok(TensorInfo { name, dims, ty, offset, n_bytes })
    }
}
