#!/usr/bin/env python3
"""Reference data from ggml itself, for tests/quant.rs: tests/data/ggml_oracle.json.

Calls the ggml shared libraries that llama-cpp-python ships (the same llama.cpp build the
fixture goldens come from) through ctypes, on the rows `dequant_goldens.quantize_inputs()` makes:

* `ref`: ggml's reference quantizers `quantize_row_*_ref` for Q8_0, Q8_1, Q2_K..Q6_K, Q8_K
  (gguf-py has no K-quant quantizers);
* `cpu`: the CPU backend's activation quantizers `quantize_row_q8_0/q8_1/q8_K` (x86 SIMD);
* `dot`: `ggml_vec_dot_*` (the SIMD ones the CPU backend runs) of each weight row quantized with the reference quantizer and each activation row quantized
  with the CPU quantizer, as f32 bit patterns.

Regenerate from the repository root (x86-64; needs `pip install llama-cpp-python==0.3.36 gguf==0.19.0 numpy`):

    python3 tools/ggml_oracle.py
"""
import ctypes
import json
import os

import numpy as np
import llama_cpp

from dequant_goldens import OUT, quantize_inputs

LIB = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
base = ctypes.CDLL(os.path.join(LIB, "libggml-base.so"))
cpu = ctypes.CDLL(os.path.join(LIB, "libggml-cpu.so"))
cpu.ggml_cpu_init()

P = ctypes.c_void_p
I64 = ctypes.c_int64
# (block size, bytes per block) as in ggml-common.h
SIZES = {"Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34),
         "Q8_1": (32, 36), "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144),
         "Q5_K": (256, 176), "Q6_K": (256, 210), "Q8_K": (256, 292)}
VEC_DOT_TYPE = {"Q4_0": "Q8_0", "Q5_0": "Q8_0", "Q8_0": "Q8_0", "Q4_1": "Q8_1", "Q5_1": "Q8_1",
                "Q2_K": "Q8_K", "Q3_K": "Q8_K", "Q4_K": "Q8_K", "Q5_K": "Q8_K", "Q6_K": "Q8_K"}


def cname(ty):
    """ggml's spelling in symbol names: q4_0, q4_K."""
    return ty.lower().replace("_k", "_K")


def run_quant(fn, ty, x):
    bs, ts = SIZES[ty]
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros(x.size // bs * ts, dtype=np.uint8)
    fn.argtypes = [P, P, I64]
    fn(x.ctypes.data, out.ctypes.data, x.size)
    return out


def ref_quant(ty, x):
    return run_quant(getattr(base, f"quantize_row_{cname(ty)}_ref"), ty, x)


def cpu_quant(ty, x):
    return run_quant(getattr(cpu, f"quantize_row_{cname(ty)}"), ty, x)


def vec_dot(fn, n, w, a):
    s = ctypes.c_float(0)
    fn.argtypes = [ctypes.c_int, P, ctypes.c_size_t, P, ctypes.c_size_t, P, ctypes.c_size_t, ctypes.c_int]
    fn(n, ctypes.byref(s), 0, w.ctypes.data, 0, a.ctypes.data, 0, 1)
    return int(np.float32(s.value).view(np.uint32))


def to_f16(x):
    out = np.zeros(x.size, dtype=np.uint16)
    cpu.ggml_cpu_fp32_to_fp16.argtypes = [P, P, I64]
    cpu.ggml_cpu_fp32_to_fp16(np.ascontiguousarray(x, dtype=np.float32).ctypes.data, out.ctypes.data, x.size)
    return out


def to_bf16(x):
    out = np.zeros(x.size, dtype=np.uint16)
    cpu.ggml_cpu_fp32_to_bf16.argtypes = [P, P, I64]
    cpu.ggml_cpu_fp32_to_bf16(np.ascontiguousarray(x, dtype=np.float32).ctypes.data, out.ctypes.data, x.size)
    return out


def main():
    x = quantize_inputs()  # 8 rows x 256
    rows, n = x.shape
    # activation rows: the weight rows in reverse order, so every dot pairs two different rows
    acts = x[::-1].copy()
    out = {"generator": "tools/ggml_oracle.py", "llama_cpp_python": llama_cpp.__version__,
           "n_per_row": n, "rows": rows, "ref": {}, "cpu": {}, "dot": {}}
    for ty in ("Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"):
        out["ref"][ty] = b"".join(ref_quant(ty, r).tobytes() for r in x).hex()
    for ty in ("Q8_0", "Q8_1", "Q8_K"):
        out["cpu"][ty] = b"".join(cpu_quant(ty, r).tobytes() for r in acts).hex()
    for ty, at in VEC_DOT_TYPE.items():
        fast = getattr(cpu, f"ggml_vec_dot_{cname(ty)}_{cname(at)}")
        res = []
        for r in range(rows):
            w, a = ref_quant(ty, x[r]), cpu_quant(at, acts[r])
            res.append(vec_dot(fast, n, w, a))
        out["dot"][ty] = res
    for ty, conv, fn in (("F16", to_f16, cpu.ggml_vec_dot_f16), ("BF16", to_bf16, cpu.ggml_vec_dot_bf16),
                         ("F32", lambda v: np.ascontiguousarray(v, dtype=np.float32), cpu.ggml_vec_dot_f32)):
        out["dot"][ty] = [vec_dot(fn, n, conv(x[r]), conv(acts[r])) for r in range(rows)]
    with open(os.path.join(OUT, "ggml_oracle.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
