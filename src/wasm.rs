//! The wasm-bindgen surface the npm package's Worker (`pkg/worker.js`) drives: a chunked
//! `Loader` and an `Engine` over the CPU backend or WebGPU (`useGpu` before the bytes). Requests go in as OpenAI-shaped JSON strings
//! and results come out as plain JS objects; every error is a JS `Error` with a `code` property
//! (`pocketllm::Error::code()`, or `invalid_request` / `busy` / `invalid_state` from here).
//! This file is the only place that knows about JavaScript.

use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::{GpuBackend, GpuOptions};
use crate::engine::StreamingLoader;
use crate::engine::{
    CancelToken, ChatRequest, Completion, CompletionRequest, Engine, EngineLoader, EngineOptions, LoadProgress,
    MemoryLimit, YieldFuture,
};
use js_sys::{Function, Promise};
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

fn js_error(code: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    let _ = js_sys::Reflect::set(&e, &"code".into(), &code.into());
    e.into()
}

impl From<crate::Error> for JsValue {
    fn from(e: crate::Error) -> JsValue {
        js_error(e.code(), &e.to_string())
    }
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| js_error("internal", &e.to_string()))
}

fn parse<'a, T: serde::Deserialize<'a>>(json: &'a str) -> Result<T, JsValue> {
    serde_json::from_str(json).map_err(|e| js_error("invalid_request", &format!("bad request: {e}")))
}

/// Engine options from JS (`finish`'s JSON): snake_case as in the Rust struct.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct LoadOptions {
    context_length: usize,
    batch_size: Option<usize>,
    /// "f32" or "f16"; absent: the backend's choice (f16 on WebGPU devices with shader-f16).
    kv_cache: Option<String>,
}

/// What a [`Loader`] feeds: collected tensors for the CPU, or a stream onto the GPU.
enum Feed {
    Cpu(EngineLoader),
    Gpu { loader: Box<StreamingLoader<GpuBackend>>, adapter: String },
}

/// Takes a GGUF file chunk by chunk (a streamed download, a File read in slices).
#[wasm_bindgen]
pub struct Loader {
    /// Shared with `useGpu`'s future, which swaps the feed once it has a device.
    inner: Rc<RefCell<Option<Feed>>>,
}

#[wasm_bindgen]
impl Loader {
    /// `total_len`: the file size when known (Content-Length, File.size). With
    /// `max_memory_bytes`, a model needing more (for a KV cache of `context_length` positions,
    /// 0 = the model's, at most 4096) is refused with `model_too_large` by the `push` that
    /// completes its header, so the download can stop there.
    #[wasm_bindgen(constructor)]
    pub fn new(total_len: Option<f64>, max_memory_bytes: Option<f64>, context_length: Option<f64>) -> Loader {
        let total = total_len.map(|n| n as u64);
        let loader = match max_memory_bytes {
            Some(max) => EngineLoader::with_limit(
                total,
                MemoryLimit { max_bytes: max as u64, context_length: context_length.unwrap_or(0.0) as usize },
            ),
            None => EngineLoader::new(total),
        };
        Loader { inner: Rc::new(RefCell::new(Some(Feed::Cpu(loader)))) }
    }

    /// Moves the load onto WebGPU before any bytes are pushed: each tensor then goes to its GPU
    /// buffer as it arrives and the wasm heap never holds the model. Rejects (code
    /// `webgpu_unavailable`) without a usable adapter, leaving the loader on the CPU.
    /// `allow_software`: whether a software adapter (SwiftShader) will do; `auto` passes false,
    /// since the CPU backend is faster than one.
    #[wasm_bindgen(js_name = useGpu)]
    pub fn use_gpu(&self, allow_software: bool) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let backend = GpuBackend::new(&GpuOptions::default()).await?;
            let adapter = backend.adapter_name();
            if backend.is_software() && !allow_software {
                return Err(js_error(
                    "webgpu_unavailable",
                    &format!("the only WebGPU adapter, {adapter}, is a software renderer; the CPU backend is faster"),
                ));
            }
            let mut feed = inner.try_borrow_mut().map_err(|_| busy())?;
            match feed.take() {
                Some(Feed::Cpu(mut loader)) => {
                    // The weights will not be held in the heap; the header is still checked.
                    loader.weights_off_host();
                    let loader = Box::new(StreamingLoader::new(loader, backend));
                    *feed = Some(Feed::Gpu { loader, adapter: format!("webgpu ({adapter})") });
                    Ok(JsValue::UNDEFINED)
                }
                other => {
                    *feed = other;
                    Err(js_error("invalid_state", "useGpu comes before the first push"))
                }
            }
        })
    }

    /// Adds the next bytes; returns `{ phase: 'read', loaded, total }`. A bad header is an
    /// error as soon as it has arrived.
    pub fn push(&mut self, chunk: &[u8]) -> Result<JsValue, JsValue> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let progress = match inner.as_mut().ok_or_else(|| js_error("invalid_state", "the loader has finished"))? {
            Feed::Cpu(loader) => loader.push(chunk)?,
            Feed::Gpu { loader, .. } => loader.push(chunk)?,
        };
        to_js(&progress)
    }

    /// Whether the GGUF header has been read yet.
    #[wasm_bindgen(js_name = hasHeader)]
    pub fn has_header(&self) -> bool {
        self.inner.try_borrow().is_ok_and(|f| match f.as_ref() {
            Some(Feed::Cpu(l)) => l.header().is_some(),
            Some(Feed::Gpu { loader, .. }) => loader.header().is_some(),
            None => false,
        })
    }

    /// Builds the engine on the CPU, or on the GPU after `useGpu`. `options_json`:
    /// `{"context_length": N, "kv_cache": "f16"}` (0 = the model's, at most 4096; kv_cache
    /// absent: the backend's choice). `on_progress` sees
    /// `{ phase: 'upload', loaded, total }` per tensor.
    pub fn finish(&mut self, options_json: &str, on_progress: Option<Function>) -> Result<WasmEngine, JsValue> {
        let options = engine_options(options_json)?;
        let feed = self.inner.try_borrow_mut().map_err(|_| busy())?.take();
        let mut progress = progress_reporter(on_progress);
        match feed.ok_or_else(|| js_error("invalid_state", "the loader has finished"))? {
            Feed::Cpu(loader) => {
                let engine = loader.finish(CpuBackend::new(1)?, options, &mut progress)?;
                Ok(WasmEngine::new(AnyEngine::Cpu(Box::new(engine)), "cpu".into()))
            }
            Feed::Gpu { loader, adapter } => {
                let engine = loader.finish(options, &mut progress)?;
                Ok(WasmEngine::new(AnyEngine::Gpu(Box::new(engine)), adapter))
            }
        }
    }
}

fn engine_options(options_json: &str) -> Result<EngineOptions, JsValue> {
    let o: LoadOptions = parse(if options_json.is_empty() { "{}" } else { options_json })?;
    let kv_type = match o.kv_cache.as_deref() {
        None => None,
        Some(s) => Some(
            crate::backend::KvType::parse(s)
                .ok_or_else(|| js_error("invalid_argument", &format!("kvCache {s:?} is not 'f32' or 'f16'")))?,
        ),
    };
    let mut options = EngineOptions { context_length: o.context_length, kv_type, ..Default::default() };
    if let Some(b) = o.batch_size {
        options.batch_size = b;
    }
    Ok(options)
}

/// Calls `on_progress({ phase: 'upload', loaded, total })` per tensor.
fn progress_reporter(on_progress: Option<Function>) -> impl FnMut(&LoadProgress) {
    move |p: &LoadProgress| {
        if let (Some(f), Ok(v)) = (&on_progress, to_js(p)) {
            let _ = f.call1(&JsValue::NULL, &v);
        }
    }
}

/// The engine on whichever backend it was built on.
enum AnyEngine {
    Cpu(Box<Engine<CpuBackend>>),
    Gpu(Box<Engine<GpuBackend>>),
}

/// Runs `$body` with `$e` bound to the engine, whatever its backend.
macro_rules! on_engine {
    ($any:expr, $e:ident => $body:expr) => {
        match $any {
            AnyEngine::Cpu($e) => $body,
            AnyEngine::Gpu($e) => $body,
        }
    };
}

/// A loaded model. One generation at a time: a second while one runs is refused with code
/// `busy` (the Worker queues requests).
#[wasm_bindgen(js_name = Engine)]
pub struct WasmEngine {
    engine: Rc<RefCell<AnyEngine>>,
    cancel: Rc<RefCell<CancelToken>>,
    backend: String,
}

impl WasmEngine {
    fn new(engine: AnyEngine, backend: String) -> Self {
        WasmEngine { engine: Rc::new(RefCell::new(engine)), cancel: Rc::new(RefCell::new(CancelToken::new())), backend }
    }
}

enum Request {
    Complete(CompletionRequest),
    Chat(ChatRequest),
}

#[wasm_bindgen(js_class = Engine)]
impl WasmEngine {
    /// `request_json`: an OpenAI-shaped completion request (`prompt`: text or token ids,
    /// `max_tokens`, `temperature`, `stop`, `ignore_eos`, ...). `on_delta(text)` gets each
    /// piece of new text; `yield_now()`, if given, returns a Promise awaited after every token
    /// so that a `cancel()` arriving as an event is seen before the next one. Resolves to
    /// `{ text, tokens, finish_reason, usage }`.
    pub fn complete(&self, request_json: &str, on_delta: Option<Function>, yield_now: Option<Function>) -> Promise {
        match parse(request_json) {
            Ok(r) => self.run(Request::Complete(r), on_delta, yield_now),
            Err(e) => Promise::reject(&e),
        }
    }

    /// `request_json`: an OpenAI-shaped chat request (`messages: [{role, content}]`, ...);
    /// otherwise as `complete`.
    pub fn chat(&self, request_json: &str, on_delta: Option<Function>, yield_now: Option<Function>) -> Promise {
        match parse(request_json) {
            Ok(r) => self.run(Request::Chat(r), on_delta, yield_now),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Stops the running generation before its next token (`finish_reason: 'cancelled'`).
    pub fn cancel(&self) {
        self.cancel.borrow().cancel();
    }

    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>, JsValue> {
        let e = self.engine.try_borrow().map_err(|_| busy())?;
        Ok(on_engine!(&*e, e => e.tokenize(text, add_special, parse_special)))
    }

    pub fn detokenize(&self, tokens: Vec<u32>) -> Result<String, JsValue> {
        let e = self.engine.try_borrow().map_err(|_| busy())?;
        Ok(on_engine!(&*e, e => e.detokenize(&tokens))?)
    }

    /// `{ architecture, name, parameter_count, vocab_size, context_length, ... }`.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let e = self.engine.try_borrow().map_err(|_| busy())?;
        on_engine!(&*e, e => to_js(e.info()))
    }

    /// Bytes of this worker's wasm memory (the heap): a model streamed onto the GPU does not
    /// pass through it, one on the CPU lives in it.
    #[wasm_bindgen(js_name = memoryBytes)]
    pub fn memory_bytes(&self) -> f64 {
        wasm_bindgen::memory()
            .unchecked_into::<js_sys::WebAssembly::Memory>()
            .buffer()
            .unchecked_into::<js_sys::ArrayBuffer>()
            .byte_length() as f64
    }

    /// `cpu` or `webgpu (<adapter>)`.
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// Destroys the GPU device, as a driver reset or the browser reclaiming the GPU would: how
    /// the tests exercise the worker's fall-back to the CPU. Does nothing on the CPU backend.
    #[wasm_bindgen(js_name = loseDevice)]
    pub fn lose_device(&self) -> Result<(), JsValue> {
        if let AnyEngine::Gpu(e) = &*self.engine.try_borrow().map_err(|_| busy())? {
            e.backend().context().device().destroy();
        }
        Ok(())
    }

    /// Forgets the cached conversation.
    pub fn reset(&self) -> Result<(), JsValue> {
        let mut e = self.engine.try_borrow_mut().map_err(|_| busy())?;
        on_engine!(&mut *e, e => e.reset());
        Ok(())
    }

    // The engine stays borrowed across the per-token awaits on purpose: that borrow is what makes
    // a second request (or tokenize/reset) meanwhile a `busy` error instead of a data race; every
    // other borrow here is a `try_borrow`, so it never panics.
    #[allow(clippy::await_holding_refcell_ref)]
    fn run(&self, req: Request, on_delta: Option<Function>, yield_now: Option<Function>) -> Promise {
        let engine = self.engine.clone();
        let token = CancelToken::new();
        *self.cancel.borrow_mut() = token.clone();
        future_to_promise(async move {
            let mut engine = engine.try_borrow_mut().map_err(|_| busy())?;
            let on_delta = |text: &str| {
                if let Some(f) = &on_delta {
                    let _ = f.call1(&JsValue::NULL, &text.into());
                }
            };
            let mut hook = || -> YieldFuture {
                let promise = yield_now.as_ref().and_then(|f| f.call0(&JsValue::NULL).ok());
                Box::pin(async move {
                    if let Some(p) = promise.and_then(|p| p.dyn_into::<Promise>().ok()) {
                        let _ = JsFuture::from(p).await;
                    }
                })
            };
            let done: Completion = on_engine!(&mut *engine, e => match &req {
                Request::Complete(r) => e.complete_stream_yielding(r, &token, on_delta, &mut hook).await?,
                Request::Chat(r) => e.chat_stream_yielding(r, &token, on_delta, &mut hook).await?,
            });
            to_js(&done)
        })
    }
}

fn busy() -> JsValue {
    js_error("busy", "the engine is running another request")
}
