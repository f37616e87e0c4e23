#!/usr/bin/env python3
"""CPU and GPU backends side by side on the same models, in one run (runs alternate, best of
--repeats), with the GPU's per-token work. Prints a Markdown table for the README.

    cargo build --release
    cargo run --release --bin synth-models -- /tmp/bench --shape smollm2-135m --types Q4_0,Q8_0,Q4_K
    python3 bench/backends.py /tmp/bench/smollm2-135m-Q4_0.gguf ... [--prompt-tokens 64] [--gen-tokens 16]
"""

import argparse
import json
import os
import subprocess


def bench(binary, model, backend, n_prompt, n_gen):
    out = subprocess.run(
        [binary, "bench", "--model", model, "--backend", backend, "--threads", "1",
         "--prompt-tokens", str(n_prompt), "--gen-tokens", str(n_gen)],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--binary", default="target/release/pocketllm")
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--gen-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    print(f"prompt_tokens={a.prompt_tokens} gen_tokens={a.gen_tokens} repeats={a.repeats} (best of), "
          f"CPU backend 1 thread, nproc={os.cpu_count()}")
    print("| model | GPU adapter | prefill tok/s GPU / CPU (ratio) | decode tok/s GPU / CPU (ratio) "
          "| per decode token on the GPU: submits, dispatches, bytes written, bytes read |")
    print("| --- | --- | --- | --- | --- |")
    for m in a.models:
        runs = {"cpu": [], "gpu": []}
        for _ in range(a.repeats):
            for backend in ("cpu", "gpu"):
                runs[backend].append(bench(a.binary, m, backend, a.prompt_tokens, a.gen_tokens))
        best = {b: (max(r["prefill_tok_s"] for r in rs), max(r["decode_tok_s"] for r in rs)) for b, rs in runs.items()}
        g = runs["gpu"][-1]
        t = g["per_decode_token"]
        (gp, gd), (cp, cd) = best["gpu"], best["cpu"]
        adapter = g["backend"].removeprefix("gpu (").removesuffix(")").split(" (")[0]
        print(f"| {os.path.basename(m)} | {adapter} | {gp:.1f} / {cp:.1f} ({gp / cp:.3f}x) "
              f"| {gd:.1f} / {cd:.1f} ({gd / cd:.3f}x) "
              f"| {t['submits']:g}, {t['dispatches']:g}, {t['bytes_written']:g} B, {t['bytes_read']:g} B |")


if __name__ == "__main__":
    main()
