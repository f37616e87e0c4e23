// The demo's UI. Everything model-related goes through the pocketllm package (its engine runs in
// a Web Worker, so this thread only updates the page). `?model=<url>` preselects a model URL.
import { createEngine, listCachedModels, deleteCachedModel, resolveModelUrl } from 'pocketllm';

// Small GGUF models on Hugging Face, sizes as downloaded; `approx` where the size was read off
// a third-party listing rather than the file itself (not checked here: no Hub on this machine).
const MODELS = [
  { spec: 'hf:ggml-org/models/tinyllamas/stories260K.gguf', name: 'stories260K (tiny story model)', mb: 1.2 },
  { spec: 'hf:bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q8_0.gguf', name: 'SmolLM2 135M Instruct Q8_0', mb: 145 },
  { spec: 'hf:bartowski/SmolLM2-360M-Instruct-GGUF/SmolLM2-360M-Instruct-Q8_0.gguf', name: 'SmolLM2 360M Instruct Q8_0', mb: 386 },
  { spec: 'hf:bartowski/Qwen2.5-0.5B-Instruct-GGUF/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf', name: 'Qwen2.5 0.5B Instruct Q4_K_M', mb: 398 },
  { spec: 'hf:bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf', name: 'Llama 3.2 1B Instruct Q4_K_M', mb: 808 },
  { spec: 'hf:unsloth/gemma-3-270m-it-GGUF/gemma-3-270m-it-Q8_0.gguf', name: 'Gemma 3 270M Instruct Q8_0', mb: 290, approx: true },
  { spec: 'hf:unsloth/gemma-3-1b-it-GGUF/gemma-3-1b-it-Q4_K_M.gguf', name: 'Gemma 3 1B Instruct Q4_K_M', mb: 810, approx: true },
  { spec: 'hf:bartowski/Phi-3.5-mini-instruct-GGUF/Phi-3.5-mini-instruct-Q4_K_M.gguf', name: 'Phi-3.5 mini Instruct Q4_K_M', mb: 2390, approx: true },
  { spec: 'hf:unsloth/Phi-4-mini-instruct-GGUF/Phi-4-mini-instruct-Q4_K_M.gguf', name: 'Phi-4 mini Instruct Q4_K_M', mb: 2490, approx: true },
];
const size = (m) => `${m.approx ? '≈' : ''}${m.mb} MB${m.approx ? ' (unverified)' : ''}`;
const FILE = '__file__';
const URL_INPUT = '__url__';

const $ = (id) => document.getElementById(id);
const ui = {
  model: $('model'), url: $('url'), modelNote: $('model-note'), file: $('file'), drop: $('drop'),
  backend: $('backend'), load: $('load'), progress: $('progress'), bar: $('bar'), progressText: $('progress-text'),
  loaded: $('loaded'), engineInfo: $('engine-info'), backendReason: $('backend-reason'), unload: $('unload'),
  cached: $('cached'), cachedCount: $('cached-count'), templateNote: $('template-note'), newChat: $('new-chat'),
  messages: $('messages'), error: $('error'), composer: $('composer'), input: $('input'), send: $('send'),
  stop: $('stop'), maxTokens: $('max-tokens'), temperature: $('temperature'), offlineNote: $('offline-note'),
};

let engine = null;
let loadAbort = null; // set while a model loads
let replyAbort = null; // set while a reply streams
let localFile = null;
let history = []; // the chat so far, as the API wants it
let cachedUrls = new Set();

// A frame counter that runs all the time: the page stays at the display's rate while the worker
// generates (the tests read window.__frames; each reply shows the page's fps). Streamed text is
// written at most once per frame.
window.__frames = 0;
let pendingText = null;
requestAnimationFrame(function tick() {
  window.__frames++;
  if (pendingText) {
    const [el, text] = pendingText;
    pendingText = null;
    const atBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
    el.textContent = text;
    if (atBottom) ui.messages.scrollTop = ui.messages.scrollHeight;
  }
  requestAnimationFrame(tick);
});

const mb = (bytes) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
const fmtRate = (x) => (x >= 100 ? Math.round(x) : x.toFixed(1));
const mode = () => document.querySelector('input[name=mode]:checked').value;

function setState(state) {
  document.body.dataset.state = state;
  const generating = state === 'generating';
  ui.load.textContent = state === 'loading' ? 'Cancel' : 'Load';
  ui.send.disabled = state !== 'ready';
  ui.stop.disabled = !generating;
  ui.unload.disabled = generating;
}

function showError(e) {
  if (!e) {
    ui.error.hidden = true;
    return;
  }
  const code = e.code ?? e.name ?? 'error';
  ui.error.replaceChildren(Object.assign(document.createElement('code'), { textContent: code }), ` ${e.message ?? e}`);
  ui.error.dataset.code = code;
  ui.error.hidden = false;
}

// ---- the model picker

function option(value, text) {
  return Object.assign(document.createElement('option'), { value, textContent: text });
}

function fillModels() {
  const selected = ui.model.value;
  const fromQuery = new URLSearchParams(location.search).get('model');
  const opts = [];
  if (fromQuery) opts.push(option(fromQuery, `${fromQuery.split('/').pop()} (from the address)`));
  for (const m of MODELS) opts.push(option(m.spec, `${m.name} · ${size(m)}`));
  if (localFile) opts.push(option(FILE, `Local file: ${localFile.name} · ${mb(localFile.size)}`));
  opts.push(option(URL_INPUT, 'Another URL or hf: spec…'));
  for (const o of opts) {
    if (o.value !== FILE && o.value !== URL_INPUT && isCached(o.value)) o.textContent += ' ✓ downloaded';
  }
  ui.model.replaceChildren(...opts);
  if (selected && opts.some((o) => o.value === selected)) ui.model.value = selected;
  modelChanged();
}

function isCached(spec) {
  try {
    return cachedUrls.has(resolveModelUrl(spec));
  } catch {
    return false;
  }
}

function chosenModel() {
  if (ui.model.value === FILE) return localFile;
  if (ui.model.value === URL_INPUT) return ui.url.value.trim() || null;
  return ui.model.value;
}

function modelChanged() {
  ui.url.hidden = ui.model.value !== URL_INPUT;
  const known = MODELS.find((m) => m.spec === ui.model.value);
  const model = chosenModel();
  if (model instanceof Blob) ui.modelNote.textContent = 'Read from your disk; not stored.';
  else if (typeof model === 'string' && isCached(model)) ui.modelNote.textContent = 'Downloaded before: loads from this browser, offline too.';
  else if (known) ui.modelNote.textContent = `${size(known)} download, kept in this browser afterwards.`;
  else ui.modelNote.textContent = '';
}

function useFile(file) {
  if (!file) return;
  localFile = file;
  fillModels();
  ui.model.value = FILE;
  modelChanged();
}

async function refreshCached() {
  let list = [];
  try {
    list = await listCachedModels();
  } catch (e) {
    console.warn('cannot list downloaded models', e);
  }
  cachedUrls = new Set(list.map((m) => m.url));
  ui.cachedCount.textContent = String(list.length);
  ui.cached.replaceChildren(
    ...list.map(({ url, bytes }) => {
      const li = document.createElement('li');
      const name = Object.assign(document.createElement('span'), { textContent: decodeURIComponent(url.split('/').pop()), title: url });
      const size = Object.assign(document.createElement('span'), { className: 'size', textContent: mb(bytes) });
      const del = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Delete', className: 'small' });
      del.setAttribute('aria-label', `Delete ${url}`);
      del.onclick = async () => {
        await deleteCachedModel(url);
        await refreshCached();
      };
      li.append(name, size, del);
      return li;
    }),
  );
  fillModels();
}

// ---- loading

const PHASES = { download: 'Downloading', cache: 'Reading from this browser', read: 'Reading the file', upload: 'Preparing the weights' };

function onProgress({ phase, loaded, total }) {
  const unit = phase === 'upload' ? (n) => `${n} tensors` : mb;
  ui.progressText.textContent = `${PHASES[phase] ?? phase}: ${total ? `${phase === 'upload' ? loaded : mb(loaded)} / ${unit(total)}` : unit(loaded)}`;
  if (total) ui.bar.value = loaded / total;
  else ui.bar.removeAttribute('value');
}

async function unloadEngine() {
  replyAbort?.abort();
  const old = engine;
  engine = null;
  ui.loaded.hidden = true;
  ui.templateNote.hidden = true;
  setState('empty');
  setPlaceholder();
  await old?.unload();
}

async function load() {
  if (loadAbort) {
    loadAbort.abort();
    return;
  }
  const model = chosenModel();
  if (!model) {
    showError({ code: 'invalid_argument', message: 'choose a model, a URL or a file first' });
    return;
  }
  showError(null);
  await unloadEngine();
  loadAbort = new AbortController();
  setState('loading');
  ui.progress.hidden = false;
  ui.bar.removeAttribute('value');
  ui.progressText.textContent = 'Starting…';
  try {
    engine = await createEngine({ model, backend: ui.backend.value, onProgress, signal: loadAbort.signal });
    const info = engine.info();
    const name = model instanceof Blob ? model.name : decodeURIComponent(String(model).split('/').pop());
    const n = info.parameter_count;
    const params = n >= 1e9 ? `${(n / 1e9).toFixed(1)} B` : n >= 1e6 ? `${Math.round(n / 1e6)} M` : `${Math.round(n / 1e3)} K`;
    ui.engineInfo.replaceChildren(
      Object.assign(document.createElement('strong'), { textContent: name }),
      ` · ${info.architecture} · ${params} parameters · context ${info.context_length} · `,
      Object.assign(document.createElement('span'), { id: 'backend-used', className: 'badge', textContent: engine.backend === 'webgpu' ? 'WebGPU' : 'CPU' }),
    );
    ui.backendReason.textContent = engine.backendReason;
    ui.loaded.hidden = false;
    ui.templateNote.hidden = info.chat_template === 'gguf';
    ui.templateNote.textContent = `This model has no chat template; chat uses the '${info.chat_template}' format. A base or story model may do better in completion mode.`;
    history = [];
    setState('ready');
    setPlaceholder();
    ui.input.focus({ preventScroll: true });
  } catch (e) {
    engine = null;
    setState('empty');
    showError(e);
  } finally {
    loadAbort = null;
    ui.progress.hidden = true;
    refreshCached();
  }
}

// ---- chatting

function addMessage(role, text) {
  const li = document.createElement('li');
  li.className = `msg ${role}`;
  const body = Object.assign(document.createElement('div'), { className: 'text', textContent: text });
  li.append(body);
  ui.messages.append(li);
  ui.messages.scrollTop = ui.messages.scrollHeight;
  return li;
}

function statsLine(usage, finish, fps) {
  const parts = [`${usage.completion_tokens} tokens`];
  parts.push(`prefill ${fmtRate(usage.prefill_tok_s)} tok/s (${usage.prompt_tokens} prompt, ${usage.prompt_tokens_details.cached_tokens} cached)`);
  parts.push(`decode ${fmtRate(usage.decode_tok_s)} tok/s`);
  if (fps !== null) parts.push(`page ${Math.round(fps)} fps`);
  if (finish === 'cancelled') parts.push('stopped');
  if (finish === 'length') parts.push('max tokens reached');
  return parts.join(' · ');
}

async function send(event) {
  event.preventDefault();
  const text = ui.input.value.trim();
  if (!engine || !text || document.body.dataset.state !== 'ready') return;
  showError(null);
  ui.input.value = '';
  const chat = mode() === 'chat';
  addMessage('user', text);
  const msg = addMessage('assistant', '');
  const body = msg.firstChild;
  msg.classList.add('streaming');
  replyAbort = new AbortController();
  setState('generating');
  const params = {
    stream: true,
    max_tokens: Math.max(1, Number(ui.maxTokens.value) || 256),
    temperature: Math.max(0, Number(ui.temperature.value) || 0),
  };
  const messages = [...history, { role: 'user', content: text }];
  const started = { t: performance.now(), frames: window.__frames };
  let reply = '';
  let usage = null;
  let finish = null;
  try {
    const stream = chat
      ? await engine.chat.completions.create({ ...params, messages }, { signal: replyAbort.signal })
      : await engine.completions.create({ ...params, prompt: text }, { signal: replyAbort.signal });
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      const piece = chat ? c.delta.content : c.text;
      if (piece) {
        reply += piece;
        pendingText = [body, reply];
      }
      finish = c.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    if (chat) history = [...messages, { role: 'assistant', content: reply }];
  } catch (e) {
    msg.classList.add('failed');
    showError(e);
  } finally {
    const seconds = (performance.now() - started.t) / 1000;
    const fps = seconds > 0.25 ? (window.__frames - started.frames) / seconds : null;
    pendingText = null;
    body.textContent = reply;
    msg.classList.remove('streaming');
    msg.dataset.finish = finish ?? 'error';
    if (usage) msg.append(Object.assign(document.createElement('div'), { className: 'stats', textContent: statsLine(usage, finish, fps) }));
    replyAbort = null;
    if (engine) setState('ready');
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }
}

async function newChat() {
  replyAbort?.abort();
  history = [];
  ui.messages.replaceChildren();
  showError(null);
  await engine?.reset().catch(() => {});
}

// ---- wiring

ui.model.addEventListener('change', modelChanged);
ui.url.addEventListener('input', modelChanged);
ui.file.addEventListener('change', () => useFile(ui.file.files[0]));
ui.load.addEventListener('click', load);
ui.unload.addEventListener('click', unloadEngine);
ui.composer.addEventListener('submit', send);
ui.stop.addEventListener('click', () => replyAbort?.abort());
ui.newChat.addEventListener('click', newChat);
ui.input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) send(e);
});
function setPlaceholder() {
  if (!engine) ui.input.placeholder = 'Load a model, then say something (Enter sends, Shift+Enter: new line)';
  else if (mode() === 'chat') ui.input.placeholder = 'Say something (Enter sends, Shift+Enter: new line)';
  else ui.input.placeholder = 'The start of a text to continue, e.g. Once upon a time';
}
for (const radio of document.querySelectorAll('input[name=mode]')) radio.addEventListener('change', setPlaceholder);
// A .gguf dropped anywhere on the page.
document.addEventListener('dragover', (e) => {
  e.preventDefault();
  ui.drop.classList.add('over');
});
document.addEventListener('dragleave', (e) => {
  if (!e.relatedTarget) ui.drop.classList.remove('over');
});
document.addEventListener('drop', (e) => {
  e.preventDefault();
  ui.drop.classList.remove('over');
  useFile([...(e.dataTransfer?.files ?? [])].find((f) => f.name.toLowerCase().endsWith('.gguf')) ?? e.dataTransfer?.files[0]);
});

// The app shell (this page, its script, the package) is kept by a service worker, so the demo
// opens offline after one visit; downloaded models are in the package's own cache.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js').then(
    () => navigator.serviceWorker.ready.then(() => (ui.offlineNote.textContent = 'This page works offline now.')),
    (e) => console.warn('no service worker:', e.message),
  );
}

fillModels();
refreshCached();
setState('empty');
