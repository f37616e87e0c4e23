// The smoke test an app would write: import the package by name, load stories260K on the CPU,
// complete 'Once upon a time' greedily (64 tokens), show the text and leave it in
// window.__result. `?model=<url>` picks the model file (default /stories260K-F32.gguf, e.g. from
// public/).
import { createEngine } from 'pocketllm';
// The package's worker, bundled by Vite with the wasm it loads (see vite.config.js). Without
// this, Vite copies worker.js as a plain asset (it cannot see the `new Worker(...)` in index.js
// as a worker) and that copy's import of ./generated/pocketllm.js fails.
import workerUrl from 'pocketllm/worker.js?worker&url';

const out = document.getElementById('out');
const model = new URLSearchParams(location.search).get('model') ?? '/stories260K-F32.gguf';

try {
  const engine = await createEngine({ model, backend: 'cpu', cache: false, workerUrl });
  const res = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 64, temperature: 0 });
  window.__result = { text: res.choices[0].text, backend: engine.backend };
  await engine.unload();
  out.textContent = res.choices[0].text;
} catch (e) {
  window.__result = { error: { code: e.code, message: String(e.message ?? e) } };
  out.textContent = `${e.code ?? 'error'}: ${e.message}`;
}
