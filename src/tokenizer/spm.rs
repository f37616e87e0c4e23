//! SentencePiece (`tokenizer.ggml.model = "llama"`) as llama.cpp runs it: start from single
//! UTF-8 characters and keep merging the adjacent pair whose concatenation is the
//! highest-scoring vocabulary entry (ties: leftmost); characters that never became a token fall
//! back to `<0xXX>` byte tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

struct Sym {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bigram {
    /// Max-heap order: higher score first, then the leftmost pair.
    fn cmp(&self, o: &Self) -> Ordering {
        self.score.total_cmp(&o.score).then(o.left.cmp(&self.left))
    }
}

/// The byte-fallback token of each byte: `<0xXX>`, else the byte itself as a token.
pub fn byte_tokens(v: &Vocab) -> [Option<u32>; 256] {
    let mut t = [None; 256];
    for (b, slot) in t.iter_mut().enumerate() {
        *slot =
            v.id(&format!("<0x{b:02X}>")).or_else(|| if b < 128 { v.id(&(b as u8 as char).to_string()) } else { None });
    }
    t
}

/// Tokenizes already-escaped text (spaces as `▁`), appending to `out`.
pub fn tokenize(v: &Vocab, bytes: &[Option<u32>; 256], text: &str, out: &mut Vec<u32>) {
    let mut syms: Vec<Sym> = Vec::with_capacity(text.len());
    for (i, (start, c)) in text.char_indices().enumerate() {
        syms.push(Sym { start, len: c.len_utf8(), prev: i.checked_sub(1), next: None });
        if i > 0 {
            syms[i - 1].next = Some(i);
        }
    }
    let mut heap = BinaryHeap::new();
    let try_add = |syms: &[Sym], heap: &mut BinaryHeap<Bigram>, l: Option<usize>, r: Option<usize>| {
        let (Some(l), Some(r)) = (l, r) else { return };
        let s = &text[syms[l].start..syms[l].start + syms[l].len + syms[r].len];
        if let Some(id) = v.id(s) {
            heap.push(Bigram { left: l, right: r, score: v.scores[id as usize], size: s.len() });
        }
    };
    for i in 1..syms.len() {
        try_add(&syms, &mut heap, Some(i - 1), Some(i));
    }
    while let Some(b) = heap.pop() {
        let (l, r) = (b.left, b.right);
        if syms[l].len == 0 || syms[r].len == 0 || syms[l].len + syms[r].len != b.size {
            continue;
        }
        syms[l].len += syms[r].len;
        syms[r].len = 0;
        syms[l].next = syms[r].next;
        if let Some(n) = syms[r].next {
            syms[n].prev = Some(l);
        }
        let (p, n) = (syms[l].prev, syms[l].next);
        try_add(&syms, &mut heap, p, Some(l));
        try_add(&syms, &mut heap, Some(l), n);
    }
    let mut i = if syms.is_empty() { None } else { Some(0) };
    while let Some(k) = i {
        let s = &text[syms[k].start..syms[k].start + syms[k].len];
        match v.id(s) {
            Some(id) => out.push(id),
            None => out.extend(s.bytes().filter_map(|b| bytes[b as usize])),
        }
        i = syms[k].next;
    }
}
