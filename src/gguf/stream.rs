//! Reading a GGUF file from a sequence of chunks, as the browser receives it from `fetch`.
//!
//! Header bytes are buffered until the header parses; after that, bytes are not kept: each
//! piece of tensor data is handed to the caller with its tensor index and offset, so weights
//! can go straight to their destination (a GPU buffer) without the whole model in memory.

use super::{Gguf, GgufError};

/// A piece of one tensor's data.
#[derive(Debug)]
pub struct TensorChunk<'a> {
    pub tensor: usize,
    /// Offset of `bytes` within the tensor's data.
    pub offset: u64,
    pub bytes: &'a [u8],
}

pub struct GgufStream {
    file_len: Option<u64>,
    header_buf: Vec<u8>,
    /// Bytes the header parser needs before it is worth trying again.
    header_needed: u64,
    header: Option<Gguf>,
    /// Tensor indices sorted by data offset, and how far through them we are.
    order: Vec<usize>,
    next: usize,
    /// Absolute position of the next byte pushed.
    pos: u64,
}

impl GgufStream {
    /// `file_len` (a Content-Length) lets counts be checked against the real size.
    pub fn new(file_len: Option<u64>) -> Self {
        GgufStream {
            file_len,
            header_buf: Vec::new(),
            header_needed: 8,
            header: None,
            order: Vec::new(),
            next: 0,
            pos: 0,
        }
    }

    pub fn header(&self) -> Option<&Gguf> {
        self.header.as_ref()
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// True once every tensor's data has been delivered.
    pub fn is_complete(&self) -> bool {
        self.header.is_some() && self.next == self.order.len()
    }

    /// Feeds the next chunk. `on_tensor` receives tensor data; it may be called several times per
    /// tensor and per chunk. Returns an error for a malformed header (never for one that is
    /// merely incomplete) or an error from `on_tensor`.
    pub fn push<E: From<GgufError>>(
        &mut self,
        mut chunk: &[u8],
        mut on_tensor: impl FnMut(&Gguf, TensorChunk) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.header.is_none() {
            self.header_buf.extend_from_slice(chunk);
            self.pos += chunk.len() as u64;
            if (self.header_buf.len() as u64) < self.header_needed {
                return Ok(());
            }
            match Gguf::parse_header(&self.header_buf, self.file_len) {
                Err(GgufError::Truncated { offset, needed }) => {
                    self.header_needed = offset + needed;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
                Ok(h) => {
                    if let Some(len) = self.file_len {
                        h.check_data_fits(len)?;
                    }
                    let mut order: Vec<usize> = (0..h.tensors.len()).collect();
                    order.sort_by_key(|&i| h.tensors[i].offset);
                    self.order = order;
                    // Replay what was buffered beyond the header as data.
                    let buffered = std::mem::take(&mut self.header_buf);
                    self.pos = 0;
                    self.header = Some(h);
                    return self.push(&buffered, on_tensor);
                }
            }
        }
        let header = self.header.as_ref().unwrap();
        while !chunk.is_empty() && self.next < self.order.len() {
            let index = self.order[self.next];
            let range = header.tensor_range(&header.tensors[index]);
            if self.pos >= range.end {
                self.next += 1;
                continue;
            }
            if self.pos < range.start {
                // Padding or unused bytes before this tensor.
                let skip = (range.start - self.pos).min(chunk.len() as u64);
                chunk = &chunk[skip as usize..];
                self.pos += skip;
                continue;
            }
            let n = (range.end - self.pos).min(chunk.len() as u64) as usize;
            on_tensor(header, TensorChunk { tensor: index, offset: self.pos - range.start, bytes: &chunk[..n] })?;
            chunk = &chunk[n..];
            self.pos += n as u64;
            if self.pos == range.end {
                self.next += 1;
            }
        }
        self.pos += chunk.len() as u64;
        Ok(())
    }

    /// Call at the end of the input: an error if the header or any tensor was cut short.
    pub fn finish(&self) -> Result<(), GgufError> {
        match &self.header {
            None => Err(GgufError::Truncated {
                offset: self.header_buf.len() as u64,
                needed: self.header_needed.saturating_sub(self.header_buf.len() as u64).max(1),
            }),
            Some(h) if !self.is_complete() => {
                let end = h.data_end();
                Err(GgufError::Truncated { offset: self.pos, needed: end.saturating_sub(self.pos).max(1) })
            }
            Some(_) => Ok(()),
        }
    }
}
