//! Loading straight onto a backend: as a GGUF file arrives in chunks, each matrix's bytes are
//! written into its weight on the backend (the GPU: straight into device buffers) instead of
//! being collected first, so the host never holds the whole model. Only the header and the
//! small vectors (norms, biases, rope factors) stay on the host until `finish` builds the
//! model. Fused weights (q/k/v, gate/up) are made the same way, each part at its offset.

use super::load::EngineLoader;
use super::{Engine, EngineOptions, LoadProgress};
use crate::backend::Backend;
use crate::model::weights::{UploadPlan, upload_plan};
use crate::{Error, Result};
use std::collections::HashMap;

/// An [`EngineLoader`] that writes tensor data to `backend` as it arrives.
pub struct StreamingLoader<B: Backend> {
    loader: EngineLoader,
    backend: B,
    /// Made when the first tensor byte arrives (the header is complete then).
    plan: Option<UploadPlan>,
    uploads: Vec<Option<B::Upload>>,
    /// Bytes each planned weight still waits for.
    missing: Vec<u64>,
    done: HashMap<String, B::Weight>,
}

impl<B: Backend> StreamingLoader<B> {
    /// `loader` may already have the header (and memory limit); no tensor data must have
    /// arrived yet.
    pub fn new(loader: EngineLoader, backend: B) -> Self {
        StreamingLoader { loader, backend, plan: None, uploads: Vec::new(), missing: Vec::new(), done: HashMap::new() }
    }

    pub fn header(&self) -> Option<&crate::gguf::Gguf> {
        self.loader.header()
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<LoadProgress> {
        let Self { loader, backend, plan, uploads, missing, done } = self;
        loader.push_with(chunk, &mut |h, c| {
            if plan.is_none() {
                let p = upload_plan(h, backend.max_fused_bytes(), true)?;
                uploads.resize_with(p.weights.len(), || None);
                *missing = p.weights.iter().map(|w| w.bytes).collect();
                *plan = Some(p);
            }
            let p = plan.as_ref().expect("made above");
            let Some((i, base)) = p.of_tensor[c.tensor] else { return Ok(false) };
            let w = &p.weights[i];
            if uploads[i].is_none() {
                uploads[i] = Some(backend.begin_weight(&w.name, w.ty, w.rows, w.cols)?);
            }
            let up = uploads[i].as_mut().expect("made above");
            backend.write_weight(up, (base + c.offset) as usize, c.bytes)?;
            missing[i] = missing[i]
                .checked_sub(c.bytes.len() as u64)
                .ok_or_else(|| Error::InvalidModel(format!("{}: more bytes than its shape holds", w.name)))?;
            if missing[i] == 0 {
                let up = uploads[i].take().expect("written above");
                done.insert(w.name.clone(), backend.finish_weight(up)?);
            }
            Ok(true)
        })
    }

    /// Builds the engine from the weights already on the backend and the vectors kept here.
    pub fn finish(self, options: EngineOptions, progress: &mut dyn FnMut(&LoadProgress)) -> Result<Engine<B>> {
        self.loader.finish_prebuilt(self.backend, self.done, options, progress)
    }
}
