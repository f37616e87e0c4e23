#!/usr/bin/env python3
"""Benchmark pocketllm against llama.cpp (llama-cpp-python) on the same GGUF files, in one run.

Usage:
    pip install llama-cpp-python==0.3.36          # the llama.cpp build the fixtures' goldens use
    cargo build --release
    python3 bench/compare_llama_cpp.py MODEL.gguf [MODEL2.gguf ...] [--threads 1] [--prompt-tokens 128] [--gen-tokens 64]

For each model it runs `pocketllm bench` and the same workload through llama.cpp (a fixed prompt
of N token ids evaluated as one batch, then M single-token decode steps, greedy), alternating
the two engines `--repeats` times and keeping the best of each, and prints one table with the
ratios. The numbers depend on the machine and its load: compare ratios from the same run only.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def bench_pocketllm(binary, model, threads, n_prompt, n_gen):
    out = subprocess.run(
        [binary, "bench", "--model", model, "--backend", "cpu", "--threads", str(threads),
         "--prompt-tokens", str(n_prompt), "--gen-tokens", str(n_gen)],
        check=True, capture_output=True, text=True,
    ).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["prefill_tok_s"], r["decode_tok_s"], r["load_ms"]


def bench_llama_cpp(model, threads, n_prompt, n_gen):
    import llama_cpp
    from llama_cpp import Llama

    t0 = time.perf_counter()
    llm = Llama(model_path=model, n_ctx=max(512, n_prompt + n_gen + 8), n_batch=max(n_prompt, 32),
                n_ubatch=max(n_prompt, 32), n_threads=threads, n_threads_batch=threads,
                logits_all=False, verbose=False)
    load_ms = (time.perf_counter() - t0) * 1e3
    n_vocab = llm.n_vocab()
    import numpy as np

    def last_argmax():
        ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        return int(np.ctypeslib.as_array(ptr, shape=(n_vocab,)).argmax())

    prompt = [(i * 7919 + 13) % n_vocab for i in range(n_prompt)]  # same ids as `pocketllm bench`
    t0 = time.perf_counter()
    llm.eval(prompt)
    prefill_s = time.perf_counter() - t0
    tok = last_argmax()
    t0 = time.perf_counter()
    for _ in range(n_gen - 1):
        llm.eval([tok])
        tok = last_argmax()
    decode_s = time.perf_counter() - t0
    del llm
    return n_prompt / prefill_s, (n_gen - 1) / decode_s, load_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "pocketllm"))
    a = ap.parse_args()
    print(f"threads={a.threads} prompt_tokens={a.prompt_tokens} gen_tokens={a.gen_tokens} "
          f"best of {a.repeats}, machine: {os.cpu_count()} cores", file=sys.stderr)
    header = "| model | engine | prefill tok/s | decode tok/s | load ms |"
    print(header)
    print("|---|---|---|---|---|")
    for m in a.models:
        ours, theirs = [], []
        for _ in range(a.repeats):
            ours.append(bench_pocketllm(a.binary, m, a.threads, a.prompt_tokens, a.gen_tokens))
            theirs.append(bench_llama_cpp(m, a.threads, a.prompt_tokens, a.gen_tokens))
        best = lambda rs: (max(r[0] for r in rs), max(r[1] for r in rs), min(r[2] for r in rs))
        o, t = best(ours), best(theirs)
        name = os.path.basename(m)
        print(f"| {name} | pocketllm | {o[0]:.1f} | {o[1]:.1f} | {o[2]:.0f} |")
        print(f"| {name} | llama.cpp | {t[0]:.1f} | {t[1]:.1f} | {t[2]:.0f} |")
        print(f"| {name} | ratio pocketllm/llama.cpp | {o[0] / t[0]:.2f} | {o[1] / t[1]:.2f} | |")


if __name__ == "__main__":
    main()
