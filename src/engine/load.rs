//! Loading an engine from a whole file, or chunk by chunk as bytes arrive (a download, a file
//! read in pieces), with progress reports.

use super::{Engine, EngineOptions, ModelInfo};
use crate::backend::Backend;
use crate::chat::ChatTemplate;
use crate::gguf::{Gguf, GgufStream, TensorChunk};
use crate::model::weights::{TensorSource, tensor_summary};
use crate::model::{MemoryNeeds, Model, ModelOptions};
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadPhase {
    /// Bytes arriving (`loaded` of `total` bytes).
    Read,
    /// Tensors handed to the backend (`loaded` of `total` tensors).
    Upload,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadProgress {
    pub phase: LoadPhase,
    pub loaded: u64,
    pub total: Option<u64>,
}

/// Takes a GGUF file in chunks; `finish` builds the engine once every tensor has arrived.
pub struct EngineLoader {
    stream: GgufStream,
    tensors: Vec<Vec<u8>>,
    total: Option<u64>,
    /// Refuse, once the header is in, a model whose [`MemoryNeeds::peak`] exceeds this.
    limit: Option<MemoryLimit>,
    weights_off_host: bool,
    header_checked: bool,
}

/// A host memory budget for [`EngineLoader::with_limit`].
#[derive(Clone, Copy, Debug)]
pub struct MemoryLimit {
    pub max_bytes: u64,
    /// The context the engine will be built with (0: the model's, at most 4096).
    pub context_length: usize,
}

impl EngineLoader {
    /// `total_len` is the file size when known (a Content-Length): it bounds what the header
    /// may claim and is reported in progress events.
    pub fn new(total_len: Option<u64>) -> Self {
        EngineLoader {
            stream: GgufStream::new(total_len),
            tensors: Vec::new(),
            total: total_len,
            limit: None,
            weights_off_host: false,
            header_checked: false,
        }
    }

    /// As [`EngineLoader::new`], and as soon as the header has arrived, refuses a model this
    /// build cannot run (`unsupported_model`) or one that needs more than `limit`
    /// (`model_too_large`), so a caller streaming a download can stop it there.
    pub fn with_limit(total_len: Option<u64>, limit: MemoryLimit) -> Self {
        EngineLoader { limit: Some(limit), ..Self::new(total_len) }
    }

    /// The weights will not be held in host memory after all (they stream onto a GPU): the
    /// limit then covers the KV cache and activations only. The header is still checked.
    pub fn weights_off_host(&mut self) {
        self.weights_off_host = true;
    }

    /// The header, once enough bytes have arrived: a model can be refused (unsupported
    /// architecture, too large) before the rest is read.
    pub fn header(&self) -> Option<&Gguf> {
        self.stream.header()
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<LoadProgress> {
        self.push_with(chunk, &mut |_, _| Ok(false))
    }

    /// [`EngineLoader::push`] offering each piece of tensor data to `sink` first: pieces it
    /// takes (`Ok(true)`, written to the backend) are not kept here.
    pub(super) fn push_with(
        &mut self,
        chunk: &[u8],
        sink: &mut dyn FnMut(&Gguf, &TensorChunk) -> Result<bool>,
    ) -> Result<LoadProgress> {
        let (tensors, checked) = (&mut self.tensors, &mut self.header_checked);
        let (limit, off_host) = (self.limit, self.weights_off_host);
        self.stream.push::<Error>(chunk, |h, c| {
            // Before the first tensor byte is kept: nothing large is reserved for a model refused.
            if !*checked {
                *checked = true;
                check_needs(h, limit, off_host)?;
            }
            if tensors.is_empty() {
                tensors.resize_with(h.tensors.len(), Vec::new);
            }
            if sink(h, &c)? {
                return Ok(());
            }
            let buf = &mut tensors[c.tensor];
            if buf.capacity() == 0 {
                // Sized by what the header claims, which a file of unknown length cannot bound:
                // a failed reservation is an error, not an abort.
                let t = &h.tensors[c.tensor];
                buf.try_reserve_exact(t.n_bytes as usize)
                    .map_err(|_| Error::OutOfMemory(format!("tensor {}: {} MiB", t.name, t.n_bytes >> 20)))?;
            }
            buf.extend_from_slice(c.bytes);
            Ok(())
        })?;
        if !self.header_checked
            && let Some(h) = self.stream.header()
        {
            self.header_checked = true;
            check_needs(h, self.limit, self.weights_off_host)?;
        }
        Ok(LoadProgress { phase: LoadPhase::Read, loaded: self.stream.position(), total: self.total })
    }

    /// Builds the engine; `progress` sees each tensor handed to the backend.
    pub fn finish<B: Backend>(
        self,
        backend: B,
        options: EngineOptions,
        progress: &mut dyn FnMut(&LoadProgress),
    ) -> Result<Engine<B>> {
        self.finish_prebuilt(backend, HashMap::new(), options, progress)
    }

    /// [`EngineLoader::finish`] with the weights a sink already put on the backend.
    pub(super) fn finish_prebuilt<B: Backend>(
        self,
        backend: B,
        prebuilt: HashMap<String, B::Weight>,
        options: EngineOptions,
        progress: &mut dyn FnMut(&LoadProgress),
    ) -> Result<Engine<B>> {
        self.stream.finish()?;
        let gguf = self.stream.header().expect("finish checked the header");
        build(gguf, TensorSource::PerTensor(&self.tensors), prebuilt, backend, options, progress)
    }
}

/// Refuses a model this build cannot run, or one needing more than `limit`, from its header.
fn check_needs(h: &Gguf, limit: Option<MemoryLimit>, weights_off_host: bool) -> Result<()> {
    let Some(limit) = limit else { return Ok(()) };
    let opts = ModelOptions { context_length: limit.context_length, ..Default::default() };
    let mut needs = MemoryNeeds::of(h, &opts)?;
    if weights_off_host {
        needs.weights = 0;
    }
    if needs.peak() > limit.max_bytes {
        let mib = |b: u64| b.div_ceil(1 << 20);
        return Err(Error::OutOfMemory(format!(
            "the model needs about {} MiB ({} MiB of weights, held twice while loading; a {} MiB KV cache; \
             {} MiB of activations), more than the {} MiB allowed",
            mib(needs.peak()),
            mib(needs.weights),
            mib(needs.kv_cache),
            mib(needs.activations),
            mib(limit.max_bytes)
        )));
    }
    Ok(())
}

impl<B: Backend> Engine<B> {
    /// Loads from a whole GGUF file in memory.
    pub fn load_bytes(bytes: &[u8], backend: B, options: EngineOptions) -> Result<Self> {
        let gguf = Gguf::parse(bytes)?;
        build(&gguf, TensorSource::File(bytes), HashMap::new(), backend, options, &mut |_| {})
    }

    /// Loads from a sequence of chunks, reporting progress after each.
    pub fn load_chunks<E: Into<Error>>(
        chunks: impl IntoIterator<Item = Result<Vec<u8>, E>>,
        total_len: Option<u64>,
        backend: B,
        options: EngineOptions,
        mut progress: impl FnMut(&LoadProgress),
    ) -> Result<Self> {
        let mut loader = EngineLoader::new(total_len);
        for chunk in chunks {
            let p = loader.push(&chunk.map_err(Into::into)?)?;
            progress(&p);
        }
        loader.finish(backend, options, &mut progress)
    }

    /// Loads a file from disk in 4 MiB chunks.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_file(
        path: &std::path::Path,
        backend: B,
        options: EngineOptions,
        progress: impl FnMut(&LoadProgress),
    ) -> Result<Self> {
        use std::io::Read;
        let cannot = |e: std::io::Error| Error::InvalidArgument(format!("cannot read {}: {e}", path.display()));
        let mut file = std::fs::File::open(path).map_err(cannot)?;
        let total = file.metadata().map_err(cannot)?.len();
        let chunks = std::iter::from_fn(move || {
            let mut buf = vec![0u8; 4 << 20];
            match file.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some(Ok(buf))
                }
                Err(e) => Some(Err(cannot(e))),
            }
        });
        Self::load_chunks(chunks, Some(total), backend, options, progress)
    }
}

fn build<B: Backend>(
    gguf: &Gguf,
    source: TensorSource,
    prebuilt: HashMap<String, B::Weight>,
    backend: B,
    options: EngineOptions,
    progress: &mut dyn FnMut(&LoadProgress),
) -> Result<Engine<B>> {
    let md = &gguf.metadata;
    // Check what can be refused cheaply before any weights reach the backend.
    let tokenizer = Tokenizer::from_metadata(md)?;
    let template = ChatTemplate::from_gguf(md)?;
    let model_opts = ModelOptions {
        context_length: options.context_length,
        batch_size: options.batch_size,
        kv_type: options.kv_type,
        ..Default::default()
    };
    let mut on_upload = |done: usize, total: usize| {
        progress(&LoadProgress { phase: LoadPhase::Upload, loaded: done as u64, total: Some(total as u64) })
    };
    let model = Model::load_prebuilt(gguf, source, prebuilt, backend, &model_opts, &mut on_upload)?;
    if tokenizer.n_vocab() > model.n_vocab() {
        return Err(Error::InvalidModel(format!(
            "the tokenizer has {} tokens but the embedding only {} rows",
            tokenizer.n_vocab(),
            model.n_vocab()
        )));
    }
    let (parameter_count, _) = tensor_summary(gguf);
    let info = ModelInfo {
        architecture: model.config.arch.name().to_string(),
        name: md.get_str("general.name").map(str::to_string),
        parameter_count,
        vocab_size: model.n_vocab(),
        context_length: 0,
        training_context_length: model.config.n_ctx_train,
        chat_template: String::new(),
        backend: String::new(),
        kv_cache: String::new(),
        kv_cache_bytes: 0,
    };
    Ok(Engine::new(model, tokenizer, template, info, options))
}
