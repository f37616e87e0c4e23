// The Web Worker that owns the engine (the wasm module). index.js on the main thread only
// posts messages to it:
//   { id, type: 'load', source: { url } | { blob } | { buffer }, options: { context_length, kv_cache } }
//   { id, type: 'complete' | 'chat', request }   (OpenAI-shaped, JSON-able)
//   { id, type: 'tokenize', text, addSpecial, parseSpecial } | { id, type: 'detokenize', tokens }
//   { id, type: 'reset' } | { type: 'cancel', target }
// and gets back { id, type: 'progress' | 'delta' | 'done' | 'error', ... }.
// Requests run one at a time, in order; a cancel is handled between two tokens, because the
// engine awaits `yieldNow` (a macrotask, so this worker's queued messages run) after each one.
import init, { Loader } from './generated/pocketllm.js';

let engine = null;
let queue = Promise.resolve();
let running = null; // id of the generation in progress
const pending = new Set(); // generations queued, not started
const cancelledEarly = new Set();

const post = (m) => self.postMessage(m);

// A macrotask without setTimeout's 4 ms clamp: a message to ourselves through a channel.
const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()?.();
const yieldNow = () =>
  new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(null);
  });

function fail(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

const CHUNK = 4 << 20;

// Downloaded models are kept in Cache Storage under their URL (index.js lists and deletes them).
const CACHE = 'pocketllm-models-v1';

async function* streamChunks(body, what) {
  const reader = body.getReader();
  try {
    for (;;) {
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        throw fail('network', `${what} failed: ${e.message}`);
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    // The loader may refuse the model from its header (model_too_large, unsupported_model,
    // bad_gguf): the rest is not read.
    reader.cancel().catch(() => {});
  }
}

// Byte chunks of the model, with the phase to report: 'cache' (a model downloaded before),
// 'download' (fetch; stored in the cache as it arrives when `store` is set) or 'read' (File,
// Blob, ArrayBuffer). `store.done()` settles the cache entry: kept when the load worked,
// deleted otherwise (a put of a download that broke off is never committed either).
async function* chunksOf(source, store) {
  if (source.url !== undefined) {
    const cache = store ? await globalThis.caches?.open(CACHE).catch(() => undefined) : undefined;
    const hit = await cache?.match(source.url).catch(() => undefined);
    if (hit) {
      const len = Number(hit.headers.get('Content-Length'));
      yield { total: len > 0 ? len : undefined, phase: 'cache' };
      store.bad = () => cache.delete(source.url); // a truncated or corrupt entry goes
      yield* streamChunks(hit.body, `reading ${source.url} from the cache`);
      return;
    }
    const abort = new AbortController();
    let res;
    try {
      res = await fetch(source.url, { signal: abort.signal });
    } catch (e) {
      throw fail('network', `cannot fetch ${source.url}: ${e.message}`);
    }
    if (!res.ok) throw fail('network', `HTTP ${res.status} ${res.statusText} for ${source.url}`);
    const encoded = (res.headers.get('Content-Encoding') || 'identity') !== 'identity';
    const len = Number(res.headers.get('Content-Length'));
    const total = !encoded && len > 0 ? len : undefined;
    yield { total, phase: 'download' };
    let body = res.body;
    if (cache && total !== undefined) {
      const [mine, toCache] = body.tee();
      body = mine;
      const headers = { 'Content-Length': String(total), 'Content-Type': 'application/octet-stream' };
      const put = cache.put(source.url, new Response(toCache, { headers })).then(() => true, () => false);
      store.bad = async () => {
        abort.abort(); // both branches error: the put rejects and stores nothing
        await put;
        await cache.delete(source.url);
      };
      store.good = () => put;
    }
    try {
      yield* streamChunks(body, `download of ${source.url}`);
    } catch (e) {
      abort.abort();
      throw e;
    }
  } else if (source.blob !== undefined) {
    yield { total: source.blob.size, phase: 'read' };
    for (let at = 0; at < source.blob.size; at += CHUNK) {
      yield new Uint8Array(await source.blob.slice(at, at + CHUNK).arrayBuffer());
    }
  } else {
    const bytes = new Uint8Array(source.buffer);
    yield { total: bytes.length, phase: 'read' };
    for (let at = 0; at < bytes.length; at += CHUNK) yield bytes.subarray(at, at + CHUNK);
  }
}

// The last load request: what a GPU lost mid-session reloads from, onto the CPU.
let lastLoad = null;

async function load(m) {
  await init();
  lastLoad = m;
  const store = { good: async () => {}, bad: async () => {} };
  try {
    const result = await loadFrom(m, m.cache === false ? undefined : store);
    await store.good();
    return result;
  } catch (e) {
    await store.bad().catch(() => {});
    throw e;
  }
}

async function loadFrom(m, store) {
  let loader = null;
  let phase = 'read';
  let total;
  let loaded = 0;
  let last = 0;
  let reason = "backend 'cpu' was requested";
  const backend = m.backend ?? 'auto';
  for await (const chunk of chunksOf(m.source, store)) {
    if (!(chunk instanceof Uint8Array)) {
      ({ total, phase } = chunk);
      loader = new Loader(total, m.maxMemoryBytes, m.options?.context_length ?? 0);
      if (backend !== 'cpu') reason = await tryGpu(loader, backend);
      continue;
    }
    loader.push(chunk);
    loaded += chunk.length;
    const now = Date.now();
    if (now - last > 50) {
      last = now;
      post({ id: m.id, type: 'progress', phase, loaded, total });
    }
  }
  post({ id: m.id, type: 'progress', phase, loaded, total: total ?? loaded });
  const onUpload = (p) => post({ id: m.id, type: 'progress', phase: 'upload', loaded: p.loaded, total: p.total });
  engine?.free();
  engine = loader.finish(JSON.stringify(m.options || {}), onUpload);
  const used = engine.backend().startsWith('webgpu') ? 'webgpu' : 'cpu';
  const info = { ...engine.info(), wasm_memory_bytes: engine.memoryBytes() };
  return { info, backend: used, reason: used === 'webgpu' ? `${reason}: ${engine.backend()}` : reason };
}

// Puts the load on WebGPU before any bytes arrive (each tensor then goes straight to its GPU
// buffer). 'webgpu' insists (a software adapter such as SwiftShader will do); 'auto' takes a
// hardware adapter and otherwise stays on the CPU, saying why.
async function tryGpu(loader, backend) {
  try {
    await loader.useGpu(backend === 'webgpu');
    return backend === 'webgpu' ? "backend 'webgpu' was requested" : 'auto: a WebGPU adapter is present';
  } catch (e) {
    if (backend === 'webgpu' || e.code !== 'webgpu_unavailable') throw e;
    return `auto: ${e.message}; using the CPU (SIMD wasm) backend`;
  }
}

const cancelled = (prompt_tokens = 0) => ({
  text: '',
  tokens: [],
  finish_reason: 'cancelled',
  usage: { prompt_tokens, completion_tokens: 0, cached_tokens: 0, prefill_tok_s: 0, decode_tok_s: 0 },
});

async function generate(m) {
  pending.delete(m.id);
  if (cancelledEarly.delete(m.id)) return cancelled();
  let sent = '';
  const onDelta = m.request.stream
    ? (text) => {
        sent += text;
        post({ id: m.id, type: 'delta', text });
      }
    : undefined;
  const json = JSON.stringify(m.request);
  const run = (delta) => (m.type === 'chat' ? engine.chat(json, delta, yieldNow) : engine.complete(json, delta, yieldNow));
  running = m.id;
  try {
    return await run(onDelta);
  } catch (e) {
    if (e?.code !== 'device_lost' || !engine.backend().startsWith('webgpu') || !lastLoad) throw e;
    // The GPU is gone (driver reset, the browser reclaimed it): reload the model on the CPU
    // (from the cache, for a URL) and answer the same request there. The conversation is in
    // the request, so nothing is lost; a stream goes on after the text it already sent.
    const reason = `the GPU was lost (${e.message}); continuing on the CPU (SIMD wasm)`;
    await load({ ...lastLoad, id: -1, backend: 'cpu' });
    let redone = '';
    const resume =
      onDelta &&
      ((text) => {
        const from = Math.max(redone.length, sent.length);
        redone += text;
        if (redone.length > from) post({ id: m.id, type: 'delta', text: redone.slice(from) });
      });
    return { ...(await run(resume)), backend_switch: { backend: 'cpu', reason } };
  } finally {
    running = null;
  }
}

async function handle(m) {
  if (m.type !== 'load' && !engine) throw fail('invalid_state', 'no model is loaded');
  switch (m.type) {
    case 'load':
      return load(m);
    case 'complete':
    case 'chat':
      return generate(m);
    case 'tokenize':
      return Array.from(engine.tokenize(m.text, m.addSpecial, m.parseSpecial));
    case 'detokenize':
      return engine.detokenize(Uint32Array.from(m.tokens));
    case 'reset':
      return engine.reset();
    case 'lose-device':
      return engine.loseDevice();
    default:
      throw fail('invalid_request', `unknown message type ${m.type}`);
  }
}

self.onmessage = (event) => {
  const m = event.data;
  if (m.type === 'cancel') {
    if (running === m.target) engine.cancel();
    else if (pending.has(m.target)) cancelledEarly.add(m.target);
    return;
  }
  if (m.type === 'complete' || m.type === 'chat') pending.add(m.id);
  queue = queue.then(async () => {
    try {
      post({ id: m.id, type: 'done', value: await handle(m) });
    } catch (e) {
      post({ id: m.id, type: 'error', code: e?.code || 'internal', message: String(e?.message ?? e) });
    }
  });
};
