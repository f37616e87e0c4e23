// pocketllm for the browser: an OpenAI-shaped API over an engine that runs in a Web Worker
// (worker.js). This thread only posts messages; no model code runs here.

/** Every error this package throws or rejects with. `code` is stable: see index.d.ts. */
export class PocketLLMError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'PocketLLMError';
    this.code = code;
  }
}

/**
 * The URL a model spec is fetched from: `hf:owner/repo[@revision]/path/file.gguf` becomes
 * `https://huggingface.co/owner/repo/resolve/<revision or main>/path/file.gguf`; other strings
 * are URLs, relative ones resolved against the page.
 */
export function resolveModelUrl(spec) {
  if (spec.startsWith('hf:')) {
    const m = /^hf:([^/@]+)\/([^/@]+)(?:@([^/]+))?\/(.+)$/.exec(spec);
    if (!m) throw new PocketLLMError('invalid_argument', `bad hf: spec ${spec} (want hf:owner/repo[@revision]/file.gguf)`);
    const [, owner, repo, rev, path] = m;
    return `https://huggingface.co/${owner}/${repo}/resolve/${encodeURIComponent(rev || 'main')}/${path}`;
  }
  const base = globalThis.document?.baseURI ?? globalThis.location?.href;
  try {
    return new URL(spec, base).href;
  } catch {
    throw new PocketLLMError('invalid_argument', `bad model URL ${spec}`);
  }
}

function sourceOf(model) {
  if (typeof model === 'string') return { url: resolveModelUrl(model) };
  if (model instanceof URL) return { url: model.href };
  if (typeof Blob !== 'undefined' && model instanceof Blob) return { blob: model };
  if (model instanceof ArrayBuffer) return { buffer: model };
  if (ArrayBuffer.isView(model)) return { buffer: model.buffer.slice(model.byteOffset, model.byteOffset + model.byteLength) };
  throw new PocketLLMError('invalid_argument', 'model must be a URL, an hf: spec, a File/Blob or an ArrayBuffer');
}

function modelName(model) {
  if (typeof model === 'string') return model.split(/[/?#]/).filter(Boolean).pop() ?? model;
  if (typeof File !== 'undefined' && model instanceof File) return model.name;
  return 'model.gguf';
}

const aborted = (what) => new PocketLLMError('aborted', `${what} was aborted`);

/** One worker and the requests in flight on it. */
class Channel {
  constructor(worker) {
    this.worker = worker;
    this.next = 1;
    this.calls = new Map();
    this.closed = null;
    worker.onmessage = (e) => {
      const m = e.data;
      const call = this.calls.get(m.id);
      if (!call) return;
      if (m.type === 'progress' || m.type === 'delta') return call.onEvent?.(m);
      this.calls.delete(m.id);
      if (m.type === 'done') call.resolve(m.value);
      else call.reject(new PocketLLMError(m.code, m.message));
    };
    worker.onerror = (e) => {
      e.preventDefault?.();
      this.close(new PocketLLMError('internal', `the pocketllm worker failed: ${e.message || 'could not start'}`));
    };
  }

  /** Posts a request; resolves with its result. `onEvent` sees its progress/delta messages. */
  call(message, onEvent) {
    const id = this.next++;
    if (this.closed) return { id, promise: Promise.reject(this.closed) };
    return {
      id,
      promise: new Promise((resolve, reject) => {
        this.calls.set(id, { resolve, reject, onEvent });
        this.worker.postMessage({ ...message, id });
      }),
    };
  }

  post(message) {
    if (!this.closed) this.worker.postMessage(message);
  }

  close(error) {
    if (this.closed) return;
    this.closed = error;
    this.worker.terminate();
    for (const call of this.calls.values()) call.reject(error);
    this.calls.clear();
  }
}

const GiB = 2 ** 30;
// Where the worker keeps downloaded models (Cache Storage, keyed by URL).
const MODEL_CACHE = 'pocketllm-models-v1';

/** Models downloaded before and kept for offline use: `[{ url, bytes }]`. */
export async function listCachedModels() {
  if (!globalThis.caches) return [];
  const cache = await caches.open(MODEL_CACHE);
  const out = [];
  for (const req of await cache.keys()) {
    const res = await cache.match(req);
    out.push({ url: req.url, bytes: Number(res?.headers.get('Content-Length')) || 0 });
  }
  return out;
}

/** Forgets a downloaded model (a URL or an `hf:` spec); resolves to whether it was there. */
export async function deleteCachedModel(model) {
  if (!globalThis.caches) return false;
  const url = new URL(resolveModelUrl(String(model)), globalThis.location?.href).href;
  return (await caches.open(MODEL_CACHE)).delete(url);
}

// wasm32 addresses at most 4 GiB; where the browser tells the device's memory (Chrome's
// navigator.deviceMemory, rounded and capped at 8), half of it, so a phone refuses a model it
// could not hold before downloading it.
function defaultMemoryBudget() {
  const device = globalThis.navigator?.deviceMemory;
  return Math.min(4 * GiB, device > 0 ? (device * GiB) / 2 : 4 * GiB);
}

/**
 * Loads a model in a new Web Worker. See index.d.ts for the options.
 */
export async function createEngine(options = {}) {
  const { model, backend = 'auto', contextLength = 0, kvCache, onProgress, signal, workerUrl } = options;
  const maxMemoryBytes = options.maxMemoryBytes ?? defaultMemoryBudget();
  if (model === undefined || model === null) throw new PocketLLMError('invalid_argument', 'createEngine needs a model');
  if (!['auto', 'webgpu', 'cpu'].includes(backend)) {
    throw new PocketLLMError('invalid_argument', `backend must be 'auto', 'webgpu' or 'cpu', not ${backend}`);
  }
  if (kvCache !== undefined && !['f32', 'f16'].includes(kvCache)) {
    throw new PocketLLMError('invalid_argument', `kvCache must be 'f32' or 'f16', not ${kvCache}`);
  }
  const source = sourceOf(model);
  if (signal?.aborted) throw aborted('loading the model');

  // The literal `new Worker(new URL('./worker.js', import.meta.url))` form is what bundlers
  // (Vite, webpack 5) recognise and bundle, with the worker's own imports and the .wasm.
  const worker = workerUrl
    ? new Worker(workerUrl, { type: 'module', name: 'pocketllm' })
    : new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'pocketllm' });
  const channel = new Channel(worker);
  const onAbort = () => channel.close(aborted('loading the model'));
  signal?.addEventListener('abort', onAbort);
  try {
    const progress = onProgress && ((m) => onProgress({ phase: m.phase, loaded: m.loaded, total: m.total }));
    const cache = options.cache ?? true;
    const load = { type: 'load', source, backend, maxMemoryBytes, cache, options: { context_length: contextLength, kv_cache: kvCache } };
    const { info, backend: used, reason } = await channel.call(load, progress).promise;
    return new Engine(channel, info, used, reason, modelName(model));
  } catch (e) {
    channel.close(e);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

let counter = 0;
const newId = (prefix) => `${prefix}-${Date.now().toString(36)}${(counter++).toString(36)}`;

function usageOf(u) {
  return {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: u.prompt_tokens + u.completion_tokens,
    prompt_tokens_details: { cached_tokens: u.cached_tokens },
    prefill_tok_s: u.prefill_tok_s,
    decode_tok_s: u.decode_tok_s,
  };
}

/** Async iterator of chunks, fed by the worker's delta messages. */
class ChunkStream {
  constructor(cancel) {
    this.items = [];
    this.waiter = null;
    this.done = false;
    this.error = null;
    this.cancel = cancel;
  }

  push(item) {
    if (this.dropping && !item.usage) return;
    this.items.push(item);
    this.wake();
  }

  /** After an abort the reader sees no more text: unread chunks are dropped, only the final
   *  chunk (finish_reason 'cancelled', usage) is still delivered. */
  dropText() {
    this.dropping = true;
    this.items = this.items.filter((c) => c.usage);
  }

  end(error) {
    this.done = true;
    this.error = error ?? null;
    this.wake();
  }

  wake() {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  [Symbol.asyncIterator]() {
    return {
      next: async () => {
        for (;;) {
          if (this.items.length) return { value: this.items.shift(), done: false };
          if (this.error) {
            const e = this.error;
            this.error = null;
            throw e;
          }
          if (this.done) return { value: undefined, done: true };
          await new Promise((r) => (this.waiter = r));
        }
      },
      // `break` out of a for-await loop stops the generation.
      return: async () => {
        if (!this.done) this.cancel();
        this.items = [];
        this.done = true;
        return { value: undefined, done: true };
      },
    };
  }
}

class Engine {
  #channel;
  #info;
  #model;

  constructor(channel, info, backend, backendReason, model) {
    this.#channel = channel;
    this.#info = info;
    this.#model = model;
    /** 'webgpu' or 'cpu': where the model runs. */
    this.backend = backend;
    /** Why that backend: what was asked for, the adapter, or why WebGPU was not used. */
    this.backendReason = backendReason;
    this.chat = { completions: { create: (body, opts) => this.#create('chat', body, opts) } };
    this.completions = { create: (body, opts) => this.#create('complete', body, opts) };
  }

  /** What was loaded: architecture, parameter count, vocabulary and context sizes, ... */
  info() {
    return { ...this.#info, backend: this.backend, backend_reason: this.backendReason };
  }

  async tokenize(text, { addSpecial = true, parseSpecial = false } = {}) {
    return this.#channel.call({ type: 'tokenize', text: String(text), addSpecial, parseSpecial }).promise;
  }

  async detokenize(tokens) {
    return this.#channel.call({ type: 'detokenize', tokens: Array.from(tokens) }).promise;
  }

  /** Forgets the cached conversation (the next request is processed from scratch). */
  async reset() {
    return this.#channel.call({ type: 'reset' }).promise;
  }

  /** Destroys the GPU device under the engine, as a driver reset would (tests of the fall-back
   *  to the CPU). Not part of the typed API. */
  async _loseDeviceForTesting() {
    return this.#channel.call({ type: 'lose-device' }).promise;
  }

  /** Stops the worker and frees the model; later calls reject with code 'invalid_state'. */
  async unload() {
    this.#channel.close(new PocketLLMError('invalid_state', 'the engine was unloaded'));
  }

  #create(kind, body = {}, opts = {}) {
    const { signal: bodySignal, ...request } = body;
    const signal = opts.signal ?? bodySignal;
    if (kind === 'chat' && !Array.isArray(request.messages)) {
      return Promise.reject(new PocketLLMError('invalid_request', 'chat.completions.create needs messages: [{ role, content }]'));
    }
    if (kind === 'complete' && typeof request.prompt !== 'string' && !Array.isArray(request.prompt)) {
      return Promise.reject(new PocketLLMError('invalid_request', 'completions.create needs a prompt (a string or token ids)'));
    }
    const id = newId(kind === 'chat' ? 'chatcmpl' : 'cmpl');
    const created = Math.floor(Date.now() / 1000);
    const model = request.model ?? this.#model;
    const stream = !!request.stream;
    const chat = kind === 'chat';

    const choice = (text, finish_reason, first) =>
      chat
        ? { index: 0, delta: text === null ? {} : first ? { role: 'assistant', content: text } : { content: text }, finish_reason }
        : { index: 0, text: text ?? '', finish_reason, logprobs: null };
    const object = chat ? (stream ? 'chat.completion.chunk' : 'chat.completion') : 'text_completion';
    const shape = (r) => ({
      id,
      object,
      created,
      model,
      choices: [
        chat
          ? { index: 0, message: { role: 'assistant', content: r.text }, finish_reason: r.finish_reason, logprobs: null }
          : { index: 0, text: r.text, finish_reason: r.finish_reason, logprobs: null },
      ],
      usage: usageOf(r.usage),
    });

    let first = true;
    const out = stream ? new ChunkStream(() => call && this.#channel.post({ type: 'cancel', target: call.id })) : null;
    const onEvent = (m) => {
      out.push({ id, object, created, model, choices: [choice(m.text, null, first)] });
      first = false;
    };
    const finalChunk = (r) => ({ id, object, created, model, choices: [choice(null, r.finish_reason, false)], usage: usageOf(r.usage) });

    const skipped = { text: '', finish_reason: 'cancelled', usage: { prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, prefill_tok_s: 0, decode_tok_s: 0 } };
    let call = null;
    let result;
    if (signal?.aborted) {
      result = Promise.resolve(skipped);
    } else {
      call = this.#channel.call({ type: kind, request }, stream ? onEvent : undefined);
      // The worker answers on the CPU when the GPU was lost mid-session: say so.
      result = call.promise.then((r) => {
        if (r.backend_switch) ({ backend: this.backend, reason: this.backendReason } = r.backend_switch);
        return r;
      });
      const onAbort = () => {
        out?.dropText();
        this.#channel.post({ type: 'cancel', target: call.id });
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const off = () => signal?.removeEventListener('abort', onAbort);
      result.then(off, off);
    }
    if (!stream) return result.then(shape);
    result.then(
      (r) => {
        out.push(finalChunk(r));
        out.end();
      },
      (e) => out.end(e),
    );
    return Promise.resolve(out);
  }
}
