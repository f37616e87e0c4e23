//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`) as llama.cpp runs it: pre-tokenize into
//! words, map each word's bytes to GPT-2's printable code points, then repeatedly merge the
//! adjacent pair with the lowest merge rank (ties: leftmost).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::TokenizerError;
use super::unicode;
use super::vocab::Vocab;

/// Merge ranks keyed by the merge line itself (`"left right"`): tokens of a byte-level
/// vocabulary never contain a space, so the line is an unambiguous pair key and lookups need no
/// allocation beyond one reused buffer.
pub struct Merges {
    ranks: HashMap<String, u32>,
}

impl Merges {
    pub fn new(lines: &[String]) -> Self {
        let mut ranks = HashMap::with_capacity(lines.len());
        for (i, l) in lines.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte; lines without one
            // become the pair ("", "").
            let key = if l.bytes().skip(1).any(|b| b == b' ') { l.clone() } else { " ".to_string() };
            ranks.entry(key).or_insert(i as u32);
        }
        Merges { ranks }
    }

    fn rank(&self, buf: &mut String, left: &str, right: &str) -> Option<u32> {
        if left.contains(' ') || right.contains(' ') {
            return None;
        }
        buf.clear();
        buf.push_str(left);
        buf.push(' ');
        buf.push_str(right);
        self.ranks.get(buf.as_str()).copied()
    }
}

pub fn load_merges(md: &crate::gguf::Metadata) -> Result<Merges, TokenizerError> {
    let lines = md.get_str_array("tokenizer.ggml.merges").ok_or(TokenizerError::MissingKey("tokenizer.ggml.merges"))?;
    Ok(Merges::new(lines))
}

/// GPT-2 byte-level form of a word.
pub fn byte_encode(word: &str, out: &mut String) {
    let t = unicode::byte_to_char_table();
    out.clear();
    for b in word.bytes() {
        out.push(t[b as usize]);
    }
}

struct Sym {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// Tokenizes one byte-encoded word, appending to `out`.
pub fn tokenize_word(v: &Vocab, m: &Merges, word: &str, buf: &mut String, out: &mut Vec<u32>) {
    if v.ignore_merges
        && let Some(id) = v.id(word)
    {
        out.push(id);
        return;
    }
    let mut syms: Vec<Sym> = Vec::with_capacity(word.len());
    for (i, (start, c)) in word.char_indices().enumerate() {
        syms.push(Sym { start, len: c.len_utf8(), prev: i.checked_sub(1), next: None });
        if i > 0 {
            syms[i - 1].next = Some(i);
        }
    }
    // (rank, left, right, size), smallest rank then leftmost first
    let mut heap: BinaryHeap<Reverse<(u32, usize, usize, usize)>> = BinaryHeap::new();
    let text = |s: &Sym| &word[s.start..s.start + s.len];
    let mut add = |syms: &[Sym], heap: &mut BinaryHeap<_>, l: Option<usize>, r: Option<usize>| {
        let (Some(l), Some(r)) = (l, r) else { return };
        if let Some(rank) = m.rank(buf, text(&syms[l]), text(&syms[r])) {
            heap.push(Reverse((rank, l, r, syms[l].len + syms[r].len)));
        }
    };
    for i in 1..syms.len() {
        add(&syms, &mut heap, Some(i - 1), Some(i));
    }
    while let Some(Reverse((_, l, r, size))) = heap.pop() {
        if syms[l].len == 0 || syms[r].len == 0 || syms[l].len + syms[r].len != size {
            continue;
        }
        syms[l].len += syms[r].len;
        syms[r].len = 0;
        syms[l].next = syms[r].next;
        if let Some(n) = syms[r].next {
            syms[n].prev = Some(l);
        }
        let (p, n) = (syms[l].prev, syms[l].next);
        add(&syms, &mut heap, p, Some(l));
        add(&syms, &mut heap, Some(l), n);
    }
    let mut i = if syms.is_empty() { None } else { Some(0) };
    while let Some(k) = i {
        let s = text(&syms[k]);
        match v.id(s) {
            Some(id) => out.push(id),
            None => {
                // llama.cpp looks each byte of the piece up as a one-byte token text
                for b in s.bytes().filter(|b| b.is_ascii()) {
                    if let Some(id) = v.id(&(b as char).to_string()) {
                        out.push(id);
                    }
                }
            }
        }
        i = syms[k].next;
    }
}
