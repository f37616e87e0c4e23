//! Part of `tests/quant.rs`: ggml itself (the llama.cpp build in llama-cpp-python 0.3.36, via
//! `tools/ggml_oracle.py` -> `tests/data/ggml_oracle.json`) as the oracle for the quantizers and
//! dot products.

use super::*;

fn f32_bits(v: &Value) -> f32 {
    f32::from_bits(v.as_u64().unwrap() as u32)
}

/// The same input rows as `quantize_ref.json` (tools/dequant_goldens.py::quantize_inputs).
fn oracle_inputs() -> (Vec<f32>, usize) {
    let r = data("quantize_ref.json");
    (f32s(&hex(r["input_f32_hex"].as_str().unwrap())), r["n_per_row"].as_u64().unwrap() as usize)
}

fn ty_named(name: &str) -> GgmlType {
    *ALL.iter().find(|t| t.name() == name).unwrap()
}

#[test]
fn quantizers_match_ggml_library_byte_for_byte() {
    let o = data("ggml_oracle.json");
    let (x, n) = oracle_inputs();
    for (name, want) in o["ref"].as_object().unwrap() {
        let ty = ty_named(name);
        let got: Vec<u8> = x.chunks(n).flat_map(|row| quantize(ty, row)).collect();
        let want = hex(want.as_str().unwrap());
        let diff = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(got.len() == want.len() && diff.is_none(), "{name} (ref): first diff at byte {diff:?}");
    }
    // The CPU backend's activation quantizers ran on the rows in reverse order.
    let acts: Vec<f32> = x.chunks(n).rev().flatten().copied().collect();
    for (name, want) in o["cpu"].as_object().unwrap() {
        let ty = ty_named(name);
        let got: Vec<u8> = acts
            .chunks(n)
            .flat_map(|row| {
                let mut q = vec![0u8; ty.row_bytes(n).unwrap()];
                quantize_row_cpu(ty, row, &mut q).unwrap();
                q
            })
            .collect();
        let want = hex(want.as_str().unwrap());
        let diff = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(got.len() == want.len() && diff.is_none(), "{name} (cpu): first diff at byte {diff:?}");
    }
}

/// `vec_dot` against the `ggml_vec_dot_*` llama.cpp's CPU backend runs (SIMD, its own summation
/// order and FMAs), on the same quantized bytes: within [`DOT_REL`] of `sum |w_i a_i|`.
#[test]
fn vec_dot_tracks_ggml_library() {
    let o = data("ggml_oracle.json");
    let (x, n) = oracle_inputs();
    let acts: Vec<&[f32]> = x.chunks(n).rev().collect();
    let mut bit_equal = 0;
    let mut total = 0;
    for (name, want) in o["dot"].as_object().unwrap() {
        let ty = ty_named(name);
        let at = vec_dot_type(ty);
        for (r, (row, want)) in x.chunks(n).zip(want.as_array().unwrap()).enumerate() {
            let w = quantize(ty, row);
            let mut a = vec![0u8; at.row_bytes(n).unwrap()];
            quantize_row_cpu(at, acts[r], &mut a).unwrap();
            let got = vec_dot(ty, n, &w, &a);
            let want = f32_bits(want);
            total += 1;
            if got.to_bits() == want.to_bits() {
                bit_equal += 1;
                continue;
            }
            let (wd, ad) = (dequantize(ty, &w, n), dequantize(at, &a, n));
            let tol = dot_tolerance(ty, &wd, &ad);
            assert!(((got - want) as f64).abs() <= tol, "{name} row {r}: ours {got} ggml {want} (tol {tol:e})");
        }
    }
    eprintln!("{bit_equal}/{total} dots bit-identical to ggml's SIMD kernels, the rest within tolerance");
}
