//! The vocabulary as llama.cpp's loader (`llama_vocab::impl::load`) builds it from GGUF
//! metadata: token texts, scores and attributes, special ids, the add-BOS/EOS defaults, and the
//! loader's text-based fix-ups (end-of-generation detection, re-typing eog-looking tokens as
//! CONTROL, per-model strip attributes).

use std::collections::{HashMap, HashSet};

use super::TokenizerError;
use crate::gguf::Metadata;

// Token attributes (llama.h's `llama_token_attr`).
pub const ATTR_UNKNOWN: u32 = 1 << 0;
pub const ATTR_UNUSED: u32 = 1 << 1;
pub const ATTR_NORMAL: u32 = 1 << 2;
pub const ATTR_CONTROL: u32 = 1 << 3;
pub const ATTR_USER_DEFINED: u32 = 1 << 4;
pub const ATTR_BYTE: u32 = 1 << 5;
pub const ATTR_LSTRIP: u32 = 1 << 7;
pub const ATTR_RSTRIP: u32 = 1 << 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Spm,
    Bpe,
    Wpm,
}

pub struct Vocab {
    pub kind: Kind,
    pub pre: String,
    pub texts: Vec<String>,
    pub scores: Vec<f32>,
    pub attrs: Vec<u32>,
    pub token_to_id: HashMap<String, u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub clean_spaces: bool,
    pub ignore_merges: bool,
    pub eog: HashSet<u32>,
    /// CONTROL, USER_DEFINED and UNKNOWN tokens, longest text first.
    pub special_cache: Vec<u32>,
}

const K: &str = "tokenizer.ggml.";

fn key(name: &str) -> String {
    format!("{K}{name}")
}

impl Vocab {
    pub fn from_metadata(md: &Metadata) -> Result<Self, TokenizerError> {
        let model = md.get_str("tokenizer.ggml.model").ok_or(TokenizerError::MissingKey("tokenizer.ggml.model"))?;
        let pre = md.get_str("tokenizer.ggml.pre").unwrap_or("").to_string();
        let n_tokens = md.get_str_array("tokenizer.ggml.tokens").map(|t| t.len());
        let in_range = |id: i64| n_tokens.is_some_and(|n| id >= 0 && (id as usize) < n);
        let default = |id: i64| in_range(id).then_some(id as u32);

        let (kind, mut bos, mut eos, mut unk, mut sep) = match model {
            "llama" => (Kind::Spm, default(1), default(2), default(0), None),
            "gpt2" => (Kind::Bpe, default(11), default(11), None, None),
            "bert" => (Kind::Wpm, default(101), None, default(100), default(102)),
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        let (mut add_bos, mut add_eos) = (false, false);
        let mut add_space_prefix = false;
        let mut clean_spaces = true;
        let mut ignore_merges = false;
        match kind {
            Kind::Spm => {
                add_space_prefix = true;
                clean_spaces = false;
                add_bos = true;
            }
            Kind::Wpm => add_bos = true,
            Kind::Bpe => match pre.as_str() {
                "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2" => {
                    ignore_merges = true;
                    add_bos = true;
                }
                "glm4" | "chatglm-bpe" => bos = None,
                "deepseek-llm" | "deepseek-coder" | "deepseek-v3" | "command-r" | "qwen2" | "deepseek-r1-qwen"
                | "kormo" | "qwen35" | "poro-chat" | "viking" | "smollm" | "gpt-4o" | "llama4" | "superbpe"
                | "trillion" | "granite-docling" | "bailingmoe" | "bailingmoe2" | "seed-coder" | "hunyuan"
                | "grok-2" | "minimax-m2" | "solar-open" => clean_spaces = false,
                "tekken" => {
                    clean_spaces = false;
                    ignore_merges = true;
                    add_bos = true;
                }
                "chameleon" => {
                    add_bos = true;
                    clean_spaces = false;
                }
                _ => {}
            },
        }
        if let Some(v) = md.get_bool("tokenizer.ggml.add_space_prefix") {
            add_space_prefix = v;
        }

        let tokens =
            md.get_str_array("tokenizer.ggml.tokens").ok_or(TokenizerError::MissingKey("tokenizer.ggml.tokens"))?;
        let n = tokens.len();
        let scores: Vec<f32> = match md.get_array("tokenizer.ggml.scores") {
            Some(a) => {
                let v = a
                    .to_f32_vec()
                    .ok_or_else(|| TokenizerError::Invalid("tokenizer.ggml.scores is not numeric".into()))?;
                if v.len() < n {
                    return Err(TokenizerError::Invalid(format!("{} scores for {n} tokens", v.len())));
                }
                v[..n].to_vec()
            }
            None => vec![0.0; n],
        };
        let attrs: Vec<u32> = match md.get_array("tokenizer.ggml.token_type") {
            Some(a) => {
                let v = a
                    .to_i64_vec()
                    .ok_or_else(|| TokenizerError::Invalid("tokenizer.ggml.token_type is not integer".into()))?;
                if v.len() < n {
                    return Err(TokenizerError::Invalid(format!("{} token types for {n} tokens", v.len())));
                }
                v[..n]
                    .iter()
                    .map(|t| match t {
                        1 => ATTR_NORMAL,
                        2 => ATTR_UNKNOWN,
                        3 => ATTR_CONTROL,
                        4 => ATTR_USER_DEFINED,
                        5 => ATTR_UNUSED,
                        6 => ATTR_BYTE,
                        _ => 0,
                    })
                    .collect()
            }
            None => vec![ATTR_NORMAL; n],
        };
        let mut texts = Vec::with_capacity(n);
        let mut token_to_id = HashMap::with_capacity(n);
        for (i, t) in tokens.iter().enumerate() {
            let t = if t.is_empty() { format!("[EMPTY_{i}]") } else { t.clone() };
            token_to_id.entry(t.clone()).or_insert(i as u32);
            texts.push(t);
        }

        let id_key = |name: &str, cur: Option<u32>| -> Option<u32> {
            match md.get_i64(&key(name)) {
                Some(id) if in_range(id) => Some(id as u32),
                _ => cur,
            }
        };
        bos = id_key("bos_token_id", bos);
        eos = id_key("eos_token_id", eos);
        let mut eot = id_key("eot_token_id", None);
        let mut eom = id_key("eom_token_id", None);
        unk = id_key("unknown_token_id", unk);
        sep = id_key("seperator_token_id", sep);
        let mut fim: [Option<u32>; 6] = [
            id_key("prefix_token_id", id_key("fim_pre_token_id", None)),
            id_key("suffix_token_id", id_key("fim_suf_token_id", None)),
            id_key("middle_token_id", id_key("fim_mid_token_id", None)),
            id_key("fim_pad_token_id", None),
            id_key("fim_rep_token_id", None),
            id_key("fim_sep_token_id", None),
        ];
        if let Some(v) = md.get_bool("tokenizer.ggml.add_bos_token") {
            add_bos = v;
        }
        if let Some(v) = md.get_bool("tokenizer.ggml.add_eos_token") {
            add_eos = v;
        }

        let mut v = Vocab {
            kind,
            pre,
            texts,
            scores,
            attrs,
            token_to_id,
            bos,
            eos,
            eot: None,
            eom: None,
            unk,
            sep,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
            ignore_merges,
            eog: HashSet::new(),
            special_cache: Vec::new(),
        };

        // Text-based detection of special tokens (llama.cpp scans its token map; where several
        // candidates exist we take the lowest id, so the choice is deterministic).
        const EOT: &[&str] = &[
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "<|end_of_text|>",
            "<EOT>",
            "_<EOT>",
            "[EOT]",
            "<｜end▁of▁sentence｜>",
            "<end_of_utterance>",
        ];
        const FIM: [&[&str]; 6] = [
            &[
                "<|fim_prefix|>",
                "<fim-prefix>",
                "<fim_prefix>",
                "<｜fim▁begin｜>",
                "<PRE>",
                "▁<PRE>",
                "<|code_prefix|>",
                "<|prefix|>",
            ],
            &[
                "<|fim_suffix|>",
                "<fim-suffix>",
                "<fim_suffix>",
                "<｜fim▁hole｜>",
                "<SUF>",
                "▁<SUF>",
                "<|code_suffix|>",
                "<|suffix|>",
            ],
            &[
                "<|fim_middle|>",
                "<fim-middle>",
                "<fim_middle>",
                "<｜fim▁end｜>",
                "<MID>",
                "▁<MID>",
                "<|code_middle|>",
                "<|middle|>",
            ],
            &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
            &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
            &["<|file_sep|>"],
        ];
        const EOG: &[&str] = &[
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<|return|>",
            "<|call|>",
            "<|flush|>",
            "<|calls|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "</s>",
            "<|eom_id|>",
            "<EOT>",
            "_<EOT>",
            "[EOT]",
            "[EOS]",
            "<|end_of_text|>",
            "<end_of_utterance>",
            "<eos>",
            "<turn|>",
            "<|tool_response>",
            "<｜end▁of▁sentence｜>",
            "[e~[",
        ];
        if eot.is_none() {
            eot = v.first_of(EOT);
            v.make_control(eot);
        }
        if eom.is_none() {
            eom = v.first_of(&["<|eom_id|>"]);
            v.make_control(eom);
        }
        for (slot, names) in fim.iter_mut().zip(FIM) {
            if slot.is_none() {
                *slot = v.first_of(names);
                v.make_control(*slot);
            }
        }
        for i in 0..n {
            if v.attrs[i] & ATTR_CONTROL != 0 && v.texts[i].contains("unused") {
                v.attrs[i] |= ATTR_UNUSED;
            }
        }
        let mut eog: HashSet<u32> = fim[3..].iter().flatten().copied().collect();
        for name in EOG {
            if let Some(&id) = v.token_to_id.get(*name) {
                eog.insert(id);
                v.make_control(Some(id));
            }
        }
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(&id) = v.token_to_id.get(name) {
                v.attrs[id as usize] = ATTR_USER_DEFINED;
            }
        }
        eog.extend([v.eos, eot, eom].into_iter().flatten());
        let has = |eog: &HashSet<u32>, t: &str| v.token_to_id.get(t).is_some_and(|id| eog.contains(id));
        if let Some(&end) = v.token_to_id.get("<|end|>") {
            let call = has(&eog, "<|call|>") || has(&eog, "<|calls|>");
            if eog.contains(&end) && call && (has(&eog, "<|return|>") || has(&eog, "<|flush|>")) {
                eog.remove(&end);
                v.attrs[end as usize] = ATTR_USER_DEFINED;
            }
        }
        if let Some(&s) = v.token_to_id.get("</s>")
            && eog.contains(&s)
            && has(&eog, "<|tool_response>")
        {
            eog.remove(&s);
            v.attrs[s as usize] = ATTR_NORMAL;
        }
        v.eog = eog;
        v.eot = eot;
        v.eom = eom;

        let mut cache: Vec<u32> = (0..n as u32)
            .filter(|&i| v.attrs[i as usize] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN) != 0)
            .collect();
        cache.sort_by(|&a, &b| v.texts[b as usize].len().cmp(&v.texts[a as usize].len()).then(a.cmp(&b)));

        // Per-model strip attributes llama.cpp sets by name.
        let name = md.get_str("general.name").unwrap_or("").to_ascii_lowercase();
        if name.contains("phi-3") || name.contains("phi3") {
            for &id in &cache {
                v.attrs[id as usize] |= ATTR_RSTRIP;
            }
            if let Some(&id) = v.token_to_id.get("</s>") {
                v.attrs[id as usize] |= ATTR_RSTRIP;
            }
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                if let Some(&id) = v.token_to_id.get(t) {
                    v.attrs[id as usize] &= !ATTR_RSTRIP;
                }
            }
        }
        v.special_cache = cache;
        Ok(v)
    }

    fn first_of(&self, names: &[&str]) -> Option<u32> {
        names.iter().filter_map(|t| self.token_to_id.get(*t).copied()).min()
    }

    fn make_control(&mut self, id: Option<u32>) {
        if let Some(id) = id {
            self.attrs[id as usize] |= ATTR_CONTROL;
        }
    }

    pub fn id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    pub fn attr(&self, id: u32) -> u32 {
        self.attrs.get(id as usize).copied().unwrap_or(0)
    }
}
