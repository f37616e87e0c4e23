#!/usr/bin/env python3
"""Reference data for tests/quant.rs, computed with the `gguf` Python package (gguf-py).

Writes two files:

* tests/data/dequant_sha256.json: for every non-F32 tensor of every fixture model under
  ../shared/fixtures/models/, the sha256 of the little-endian f32 bytes of
  `gguf.quants.dequantize(...)`. The fixtures README states that gguf-py's dequantization agrees
  bit for bit with ggml's for every type present in the fixtures.
* tests/data/quantize_ref.json: seeded random rows (plus edge cases) and their quantization by
  `gguf.quants.quantize` for the types gguf-py can quantize (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
  Q8_0), all as hex. gguf-py's quantizers mirror ggml's quantize_row_*_ref.

Regenerate (from the repository root, with `pip install gguf==0.19.0 numpy`):

    python3 tools/dequant_goldens.py
"""
import hashlib
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "..", "shared", "fixtures")
OUT = os.path.join(ROOT, "tests", "data")


def dequant_hashes():
    models = {}
    for sub in ("models/stories260k", "models/random"):
        for name in sorted(os.listdir(os.path.join(FIXTURES, sub))):
            if not name.endswith(".gguf"):
                continue
            rel = f"{sub}/{name}"
            reader = gguf.GGUFReader(os.path.join(FIXTURES, rel))
            tensors = {}
            for t in reader.tensors:
                if t.tensor_type == T.F32:
                    continue
                values = dequantize(t.data, t.tensor_type).astype("<f4", copy=False)
                tensors[t.name] = {
                    "type": t.tensor_type.name,
                    "n": int(values.size),
                    "sha256": hashlib.sha256(values.tobytes()).hexdigest(),
                }
            models[rel] = tensors
            print(f"{rel}: {len(tensors)} tensors", file=sys.stderr)
    return models


def quantize_inputs():
    """8 rows of 256: random normal rows at several scales, then edge cases."""
    rng = np.random.default_rng(20261123)
    rows = [
        rng.standard_normal(256),
        rng.standard_normal(256) * 1e-3,
        rng.standard_normal(256) * 100.0,
        rng.uniform(-1.0, 1.0, 256) + 0.5,  # mostly positive: exercises min/offset formats
    ]
    edge = np.zeros(256)
    edge[32:64] = 0.25  # constant block
    edge[64:96] = np.arange(32) - 15.5  # symmetric ramp
    # ties for round-half-away-from-zero: amax 127 -> d 1, values at k + 0.5
    edge[96:128] = np.concatenate([[127.0, -127.0], np.arange(30) * 3.0 - 44.5])
    edge[128:160] = -rng.uniform(0.0, 1.0, 32)  # all negative
    edge[160:192] = rng.standard_normal(32) * 1e-6  # f16 scales become subnormal
    edge[192:224] = rng.standard_normal(32) * 3e4  # large
    edge[224:256] = (rng.integers(-16, 16, 32)).astype(np.float64)  # exact grid values
    rows.append(edge)
    rows.append(rng.standard_normal(256) ** 3)  # heavy tails
    rows.append(np.where(rng.uniform(size=256) < 0.9, 0.0, rng.standard_normal(256)))  # sparse
    rows.append(rng.laplace(size=256))
    return np.stack(rows).astype(np.float32)


def quantize_refs():
    x = quantize_inputs()
    out = {"n_per_row": int(x.shape[1]), "input_f32_hex": x.astype("<f4").tobytes().hex(), "types": {}}
    for ty in (T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        q = quantize(x, ty)
        out["types"][ty.name] = q.tobytes().hex()
    # BF16 special values: NaN quieting, infinities, rounding ties
    special = np.array(
        [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8,
         3.0e38, -1.5e-40, 65504.0, 65520.0],
        dtype=np.float32,
    )
    signalling = np.array([0x7F800001, 0xFF800123], dtype=np.uint32).view(np.float32)
    special = np.concatenate([special, signalling])
    out["bf16_special_input_hex"] = special.astype("<f4").tobytes().hex()
    out["bf16_special_hex"] = quantize(special, T.BF16).tobytes().hex()
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    refs = quantize_refs()
    with open(os.path.join(OUT, "quantize_ref.json"), "w") as f:
        json.dump({"generator": "tools/dequant_goldens.py", "gguf_py": gguf.__version__ if hasattr(gguf, "__version__") else "0.19.0", **refs}, f, indent=1)
    models = dequant_hashes()
    with open(os.path.join(OUT, "dequant_sha256.json"), "w") as f:
        json.dump({"generator": "tools/dequant_goldens.py (gguf.quants.dequantize, gguf-py 0.19.0)",
                   "regenerate": "python3 tools/dequant_goldens.py", "models": models}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
