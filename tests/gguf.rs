mod common;

use pocketllm::gguf::{Array, Gguf, GgufError, GgufStream, GgufWriter, Value};
use pocketllm::quant::GgmlType;

#[test]
fn parses_every_fixture_model() {
    let models = common::fixture_models();
    if models.is_empty() {
        return;
    }
    for rel in models {
        let bytes = common::read_fixture(&rel).unwrap();
        let g = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(g.metadata.get_str("general.architecture").is_some(), "{rel}");
        assert!(!g.tensors.is_empty(), "{rel}");
        let end = g.data_end();
        assert!(end <= bytes.len() as u64 && bytes.len() as u64 - end < g.alignment, "{rel}: data should end the file");
    }
}

#[test]
fn stream_reader_delivers_the_same_bytes_for_any_chunking() {
    let Some(bytes) = common::read_fixture("models/stories260k/stories260K-Q8_0.gguf") else { return };
    let whole = Gguf::parse(&bytes).unwrap();
    for chunk_size in [1usize, 7, 4096, 65536, bytes.len()] {
        let mut stream = GgufStream::new(Some(bytes.len() as u64));
        let mut got: Vec<Vec<u8>> = whole.tensors.iter().map(|t| vec![0xAA; t.n_bytes as usize]).collect();
        let mut delivered = 0u64;
        for c in bytes.chunks(chunk_size) {
            stream
                .push::<GgufError>(c, |_, tc| {
                    got[tc.tensor][tc.offset as usize..tc.offset as usize + tc.bytes.len()].copy_from_slice(tc.bytes);
                    delivered += tc.bytes.len() as u64;
                    Ok(())
                })
                .unwrap();
        }
        stream.finish().unwrap();
        assert_eq!(stream.header(), Some(&whole));
        assert_eq!(delivered, whole.tensors.iter().map(|t| t.n_bytes).sum::<u64>());
        for (t, data) in whole.tensors.iter().zip(&got) {
            assert_eq!(data.as_slice(), whole.tensor_bytes(&bytes, t), "chunk {chunk_size}, {}", t.name);
        }
    }
}

#[test]
fn writer_round_trips_every_value_type() {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::String("llama".into()))
        .set("u8", Value::U8(7))
        .set("i8", Value::I8(-7))
        .set("u16", Value::U16(700))
        .set("i16", Value::I16(-700))
        .set("u32", Value::U32(70000))
        .set("i32", Value::I32(-70000))
        .set("u64", Value::U64(1 << 40))
        .set("i64", Value::I64(-(1 << 40)))
        .set("f32", Value::F32(1.5))
        .set("f64", Value::F64(-2.25))
        .set("bool", Value::Bool(true))
        .set("strs", Value::Array(Array::String(vec!["a".into(), "".into(), "ü".into()])))
        .set("nested", Value::Array(Array::Array(vec![Array::I32(vec![1, 2]), Array::F32(vec![0.5])])));
    let data: Vec<u8> = (0..4 * 32).map(|i| i as u8).collect();
    w.add_tensor("t0", &[32, 1], GgmlType::F32, data.clone());
    w.add_tensor("t1", &[32], GgmlType::Q8_0, vec![3; 34]);
    let bytes = w.to_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.metadata.get("i64"), Some(&Value::I64(-(1 << 40))));
    assert_eq!(g.metadata.get_str_array("strs").unwrap()[2], "ü");
    assert_eq!(g.metadata.get("nested").unwrap().as_array().unwrap().len(), 2);
    assert_eq!(g.metadata.entries.len(), 14);
    let t0 = g.tensor("t0").unwrap();
    assert_eq!(g.tensor_bytes(&bytes, t0), &data[..]);
    assert_eq!(g.tensor_bytes(&bytes, g.tensor("t1").unwrap()), &[3u8; 34][..]);
}

#[test]
fn truncating_a_real_file_anywhere_is_an_error_not_a_crash() {
    let Some(bytes) = common::read_fixture("models/stories260k/stories260K-Q4_0.gguf") else { return };
    let n = Gguf::parse(&bytes).unwrap().data_end() as usize;
    let mut cuts: Vec<usize> = (0..4096.min(n)).collect();
    cuts.extend((4096..n).step_by(997));
    cuts.push(n - 1);
    for cut in cuts {
        assert!(Gguf::parse(&bytes[..cut]).is_err(), "cut at {cut} parsed");
        let mut s = GgufStream::new(None);
        let pushed = s.push::<GgufError>(&bytes[..cut], |_, _| Ok(()));
        assert!(pushed.is_err() || s.finish().is_err(), "stream cut at {cut} finished");
    }
}

#[test]
fn corrupt_headers_give_typed_errors() {
    let Some(bytes) = common::read_fixture("models/stories260k/stories260K-F32.gguf") else { return };
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert!(matches!(Gguf::parse(&bad), Err(GgufError::BadMagic(_))));
    let mut bad = bytes.clone();
    bad[4..8].copy_from_slice(&9u32.to_le_bytes());
    assert_eq!(Gguf::parse(&bad), Err(GgufError::UnsupportedVersion(9)));
    let mut bad = bytes.clone();
    bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(Gguf::parse(&bad), Err(GgufError::Implausible { .. })));
    let mut bad = bytes.clone();
    bad[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(Gguf::parse(&bad), Err(GgufError::Implausible { .. })));
    // Flip every byte of the header region in turn: never a panic.
    let header_len = Gguf::parse(&bytes).unwrap().data_offset as usize;
    for i in (0..header_len).step_by(3) {
        let mut bad = bytes.clone();
        bad[i] ^= 0xFF;
        let _ = Gguf::parse(&bad);
    }
}

#[test]
fn tensor_problems_are_named() {
    let tensor_file = |ty: GgmlType, dims: &[u64], len: usize| {
        let mut w = GgufWriter::new();
        w.set("general.architecture", Value::String("llama".into()));
        w.add_tensor("x", dims, ty, vec![0; len]);
        w.to_bytes()
    };
    // Unknown type id: rewrite the F32 id in place (name length, name, n_dims, dim, then the type).
    let mut bytes = tensor_file(GgmlType::F32, &[4], 16);
    let needle = [1u8, 0, 0, 0, 0, 0, 0, 0, b'x', 1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0];
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len();
    bytes[at..at + 4].copy_from_slice(&16u32.to_le_bytes()); // IQ2_XXS
    let err = Gguf::parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("IQ2_XXS") && err.to_string().contains("\"x\""), "{err}");
    bytes[at..at + 4].copy_from_slice(&9999u32.to_le_bytes());
    assert!(matches!(Gguf::parse(&bytes), Err(GgufError::TensorType { .. })));
    // A row that is not a whole number of blocks.
    let mut bytes = tensor_file(GgmlType::Q8_0, &[32], 34);
    let needle = [1u8, 0, 0, 0, 0, 0, 0, 0, b'x', 1, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0];
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap() + 13;
    bytes[at] = 31;
    let err = Gguf::parse(&bytes).unwrap_err();
    assert!(matches!(err, GgufError::BadTensor { .. }) && err.to_string().contains("block size"), "{err}");
    // Data past the end of the file.
    let bytes = tensor_file(GgmlType::F32, &[8], 32);
    let cut = &bytes[..bytes.len() - 4];
    assert!(matches!(Gguf::parse(cut), Err(GgufError::TensorOutOfBounds { .. }) | Err(GgufError::BadTensor { .. })));
}

/// Rewrites the data offset of tensor `name` in a file the writer made (the offset is the last
/// field of its tensor info: name length, name, n_dims, dims, type, offset).
fn set_offset(bytes: &mut [u8], name: &str, n_dims: usize, offset: u64) {
    let mut needle = (name.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(name.as_bytes());
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len() + 4 + 8 * n_dims + 4;
    bytes[at..at + 8].copy_from_slice(&offset.to_le_bytes());
}

#[test]
fn misaligned_and_overlapping_tensors_are_refused() {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::String("llama".into()));
    w.add_tensor("a", &[64], GgmlType::F32, vec![1; 256]);
    w.add_tensor("b", &[64], GgmlType::F32, vec![2; 256]);
    let good = w.to_bytes();
    assert!(Gguf::parse(&good).is_ok());

    let mut misaligned = good.clone();
    set_offset(&mut misaligned, "b", 1, 256 + 4);
    let err = Gguf::parse(&misaligned).unwrap_err();
    assert!(
        matches!(&err, GgufError::BadTensor { name, .. } if name == "b") && err.to_string().contains("aligned"),
        "{err}"
    );

    let mut overlapping = good.clone();
    set_offset(&mut overlapping, "b", 1, 128);
    let err = Gguf::parse(&overlapping).unwrap_err();
    assert!(matches!(err, GgufError::TensorsOverlap { .. }), "{err}");

    let mut past_end = good.clone();
    set_offset(&mut past_end, "b", 1, 1 << 20);
    assert!(Gguf::parse(&past_end).is_err());
}
