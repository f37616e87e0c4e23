//! Writing GGUF files (version 3), for tests and tools that make their own models.

use super::reader::{DEFAULT_ALIGNMENT, GGUF_MAGIC};
use super::value::{Array, Metadata, Value};
use crate::quant::GgmlType;

pub struct GgufWriter {
    metadata: Metadata,
    /// Keys in insertion order: llama.cpp writes `general.architecture` first, and so do we.
    key_order: Vec<String>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
    alignment: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        GgufWriter {
            metadata: Metadata::default(),
            key_order: Vec::new(),
            tensors: Vec::new(),
            alignment: DEFAULT_ALIGNMENT,
        }
    }

    pub fn set(&mut self, key: &str, value: Value) -> &mut Self {
        if let Value::U32(a) = value
            && key == "general.alignment"
        {
            self.alignment = a as u64;
        }
        if !self.metadata.contains(key) {
            self.key_order.push(key.to_string());
        }
        self.metadata.insert(key, value);
        self
    }

    /// Adds a tensor. `dims` in GGUF order (row length first); `data` already in `ty`'s layout.
    pub fn add_tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType, data: Vec<u8>) -> &mut Self {
        let n: u64 = dims.iter().product();
        debug_assert_eq!(data.len() as u64, n / ty.block_size() as u64 * ty.type_size() as u64, "{name}");
        self.tensors.push((name.to_string(), dims.to_vec(), ty, data));
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.key_order.len() as u64).to_le_bytes());
        for key in &self.key_order {
            write_string(&mut out, key);
            let v = self.metadata.get(key).unwrap();
            out.extend_from_slice(&v.type_id().to_le_bytes());
            write_value(&mut out, v);
        }
        let align = |x: u64| x.div_ceil(self.alignment) * self.alignment;
        let mut offset = 0u64;
        for (name, dims, ty, data) in &self.tensors {
            write_string(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = align(offset + data.len() as u64);
        }
        out.resize(align(out.len() as u64) as usize, 0);
        for (_, _, _, data) in &self.tensors {
            out.extend_from_slice(data);
            out.resize(align(out.len() as u64) as usize, 0);
        }
        out
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => write_string(out, s),
        Value::Array(a) => write_array(out, a),
    }
}

fn write_array(out: &mut Vec<u8>, a: &Array) {
    use super::value::value_type as vt;
    macro_rules! prim {
        ($ty:expr, $v:expr) => {{
            out.extend_from_slice(&$ty.to_le_bytes());
            out.extend_from_slice(&($v.len() as u64).to_le_bytes());
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }};
    }
    match a {
        Array::U8(v) => prim!(vt::U8, v),
        Array::I8(v) => prim!(vt::I8, v),
        Array::U16(v) => prim!(vt::U16, v),
        Array::I16(v) => prim!(vt::I16, v),
        Array::U32(v) => prim!(vt::U32, v),
        Array::I32(v) => prim!(vt::I32, v),
        Array::U64(v) => prim!(vt::U64, v),
        Array::I64(v) => prim!(vt::I64, v),
        Array::F32(v) => prim!(vt::F32, v),
        Array::F64(v) => prim!(vt::F64, v),
        Array::Bool(v) => prim!(vt::BOOL, v.iter().map(|&b| b as u8).collect::<Vec<u8>>()),
        Array::String(v) => {
            out.extend_from_slice(&vt::STRING.to_le_bytes());
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
            for s in v {
                write_string(out, s);
            }
        }
        Array::Array(v) => {
            out.extend_from_slice(&vt::ARRAY.to_le_bytes());
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
            for inner in v {
                write_array(out, inner);
            }
        }
    }
}
