#!/usr/bin/env python3
"""Goldens for pocketllm's synthetic models, with llama.cpp as the oracle.

Regenerate (from the repository root):

    cargo run --release --bin synth-models -- DIR
    python3 tools/make_goldens.py DIR            # writes tests/goldens/synth/

Needs `pip install llama-cpp-python==0.3.36 gguf numpy` (the fixtures' llama.cpp build; the
fixtures README in ../shared/fixtures has the details). The model files themselves are NOT
committed: tests rebuild them with `pocketllm::synth::synth_model(arch, type, seed)` and check the
sha256 recorded here, so generator and goldens cannot drift apart silently.

How llama.cpp is run (the same settings as ../shared/fixtures/README.md): llama-cpp-python
`Llama(model_path, n_ctx=128, n_batch=128, n_ubatch=128, n_threads=2, logits_all=True,
type_k=type_v=F32, flash_attn=False)`, explicit token ids, no BOS added. Each sequence is evaluated
from an empty KV cache as ONE batch (positions 0..n-1); then GREEDY_STEPS greedy steps, one token
at a time (argmax, ties -> lowest id, as numpy's argmax).

Per model `X.gguf` (X = `{variant}-{TYPE}`, the variant being `SynthArch::name()`), in the output
folder:

- `X.json`: architecture (the file's `general.architecture`), `variant` when it differs (`llama3`
  is a `llama` file), type, seed, model sha256/bytes, per-tensor types, reference (versions, CPU
  features, settings), the sequences with their greedy continuations and logit margins;
- `X.logits.f32.bin`: float32 LE, row-major [rows, n_vocab]: every position of sequence 0, then of
  sequence 1 (row j of a sequence = logits after feeding its tokens 0..j);
- `X.dequant_logits.f32.bin` (non-F32 models): the same rows when every tensor is first
  dequantized to F32 by the `gguf` package (bit-identical to ggml's own dequantization) and the
  resulting F32 model is run: what an engine that dequantizes and computes in f32 should match
  closely (llama.cpp itself quantizes activations on the CPU; see the fixtures README).

`summary.json` is updated, not replaced: models of an earlier run that are not in DIR keep their
entries, so a folder holding only some models (`synth-models DIR --arch llama3`) adds or
refreshes their goldens and leaves every other file as it was.
"""

import argparse
import glob
import hashlib
import json
import os
import struct
import sys
import tempfile

import numpy as np

import gguf
import llama_cpp
from llama_cpp import Llama

SEQUENCES = [
    [1],
    [354, 288, 77, 319, 359, 500, 354, 12],
]
GREEDY_STEPS = 16
SETTINGS = dict(n_ctx=128, n_batch=128, n_ubatch=128, n_threads=2, logits_all=True,
                type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32, flash_attn=False)
GENERATOR = "pocketllm::synth::synth_model (cargo run --release --bin synth-models -- DIR)"
ALIGN = 32  # the synthetic files have no general.alignment key: GGUF's default


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load(path):
    return Llama(model_path=path, verbose=False, **SETTINGS)


def run(path):
    """Logits of every position of every sequence, and the greedy continuations."""
    llm = load(path)
    rows, seqs, offset = [], [], 0
    for tokens in SEQUENCES:
        llm.reset()
        llm.eval(tokens)
        logits = np.array(llm.scores[: len(tokens)], dtype=np.float32)
        rows.append(logits)
        greedy, margins, last = [], [], logits[-1]
        for _ in range(GREEDY_STEPS):
            order = np.argsort(-last, kind="stable")
            tok = int(np.argmax(last))
            greedy.append(tok)
            margins.append(float(last[order[0]] - last[order[1]]))
            llm.eval([tok])
            last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        seqs.append(dict(tokens=tokens, logits_row_offset=offset,
                         greedy=dict(tokens=greedy, top1_minus_top2=margins)))
        offset += len(tokens)
    n_vocab = llm.n_vocab()
    del llm
    return np.concatenate(rows), seqs, n_vocab


def tensor_list(reader):
    return [dict(name=t.name, type=t.tensor_type.name, shape_ne=[int(x) for x in t.shape],
                 n_bytes=int(t.n_bytes)) for t in reader.tensors]


def write_dequantized(src, dst):
    """Copies `src` with every tensor dequantized to F32 (metadata bytes kept as they are)."""
    reader = gguf.GGUFReader(src)
    raw = np.memmap(src, mode="r", dtype=np.uint8)
    kv_end = min(t.field.offset for t in reader.tensors)  # tensor infos follow the key/values
    out = bytearray(raw[:kv_end].tobytes())
    datas, offset = [], 0
    for t in reader.tensors:
        if t.tensor_type == gguf.GGMLQuantizationType.F32:
            f = np.asarray(t.data, dtype=np.float32)
        else:
            f = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        data = f.reshape(-1).astype("<f4").tobytes()
        name = t.name.encode()
        out += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(t.shape))
        out += b"".join(struct.pack("<Q", int(d)) for d in t.shape)
        out += struct.pack("<IQ", 0, offset)
        datas.append(data)
        offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
    out += b"\0" * (-len(out) % ALIGN)
    for d in datas:
        out += d + b"\0" * (-len(d) % ALIGN)
    with open(dst, "wb") as f:
        f.write(out)


def reference():
    libs = sorted(os.path.basename(p) for p in glob.glob(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so.*.*")))
    return dict(implementation="llama.cpp via llama-cpp-python", llama_cpp_python=llama_cpp.__version__,
                ggml_library=libs[-1] if libs else None, gguf_py=getattr(gguf, "__version__", None),
                cpu_backend=llama_cpp.llama_print_system_info().decode().strip(),
                settings=dict(n_ctx=128, n_batch=128, n_ubatch=128, n_threads=2, type_k="f32", type_v="f32",
                              flash_attn=False, bos_added=False,
                              note="each sequence is evaluated from an empty KV cache as ONE batch (positions "
                                   "0..n-1); greedy steps are then evaluated one token at a time"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", help="folder written by `synth-models`")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "goldens", "synth"))
    ap.add_argument("--seed", type=int, default=1, help="the seed synth-models used (default 1)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    ref = reference()
    summary, refused = [], []
    for path in sorted(glob.glob(os.path.join(args.models, "*.gguf"))):
        stem = os.path.basename(path)[: -len(".gguf")]
        variant, ty = stem.rsplit("-", 1)
        arch = gguf.GGUFReader(path).fields["general.architecture"].contents()
        try:
            logits, seqs, n_vocab = run(path)
        except Exception as e:  # llama.cpp refusing a type is a finding, not a crash
            print(f"{stem}: llama.cpp refused: {e}", file=sys.stderr)
            refused.append(dict(model=stem, error=str(e)))
            continue
        logits_file = f"{stem}.logits.f32.bin"
        logits.astype("<f4").tofile(os.path.join(args.out, logits_file))
        golden = dict(model_file=os.path.basename(path), architecture=arch)
        if variant != arch:
            golden["variant"] = variant
        golden.update(type=ty, seed=args.seed,
                      generator=GENERATOR, model_sha256=sha256(path), model_bytes=os.path.getsize(path),
                      tensor_types=tensor_list(gguf.GGUFReader(path)), reference=ref, sequences=seqs,
                      logits=dict(file=logits_file, rows=int(logits.shape[0]), n_vocab=n_vocab,
                                  dtype="float32 little-endian, row-major [rows, n_vocab]",
                                  sha256=hashlib.sha256(logits.astype("<f4").tobytes()).hexdigest()))
        if ty != "F32":
            with tempfile.TemporaryDirectory() as tmp:
                deq_path = os.path.join(tmp, f"{stem}-dequantized.gguf")
                write_dequantized(path, deq_path)
                deq, deq_seqs, _ = run(deq_path)
            deq_file = f"{stem}.dequant_logits.f32.bin"
            deq.astype("<f4").tofile(os.path.join(args.out, deq_file))
            golden["dequantized_f32_reference"] = dict(
                file=deq_file, how="every tensor dequantized to F32 by gguf.quants.dequantize, then run in F32",
                greedy=[s["greedy"]["tokens"] for s in deq_seqs],
                max_abs_diff_to_native=float(np.abs(deq - logits).max()),
                mean_abs_diff_to_native=float(np.abs(deq - logits).mean()))
        with open(os.path.join(args.out, f"{stem}.json"), "w") as f:
            json.dump(golden, f, indent=1)
            f.write("\n")
        line = dict(model=stem, sha256=golden["model_sha256"][:16],
                    logits_min=float(logits.min()), logits_max=float(logits.max()))
        if "dequantized_f32_reference" in golden:
            line["native_vs_dequant_max"] = golden["dequantized_f32_reference"]["max_abs_diff_to_native"]
        summary.append(line)
        print(json.dumps(line))
    summary, refused = merge_summary(os.path.join(args.out, "summary.json"), summary, refused)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(dict(reference=ref, sequences=SEQUENCES, greedy_steps=GREEDY_STEPS, models=summary,
                       refused_by_llama_cpp=refused), f, indent=1)
        f.write("\n")


def merge_summary(path, models, refused):
    """This run's entries, plus an earlier summary's entries for models this run did not touch."""
    if not os.path.exists(path):
        return models, refused
    with open(path) as f:
        old = json.load(f)
    touched = {m["model"] for m in models} | {m["model"] for m in refused}
    keep = lambda entries: [m for m in entries if m["model"] not in touched]
    by_name = lambda m: m["model"]
    return (sorted(keep(old.get("models", [])) + models, key=by_name),
            sorted(keep(old.get("refused_by_llama_cpp", [])) + refused, key=by_name))


if __name__ == "__main__":
    main()
