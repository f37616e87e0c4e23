//! Built-in templates for GGUF files that carry no `tokenizer.chat_template`, and the rule that
//! picks one from `general.architecture` and the vocabulary.

use crate::gguf::Metadata;

/// `(name, source)` of every built-in template. The sources are in `src/chat/templates/`.
pub const FALLBACKS: &[(&str, &str)] = &[
    ("chatml", include_str!("templates/chatml.jinja")),
    ("llama3", include_str!("templates/llama3.jinja")),
    ("llama2", include_str!("templates/llama2.jinja")),
    ("zephyr", include_str!("templates/zephyr.jinja")),
    ("gemma", include_str!("templates/gemma.jinja")),
    ("phi3", include_str!("templates/phi3.jinja")),
];

/// The source of a built-in template by name.
pub fn fallback_source(name: &str) -> Option<(&'static str, &'static str)> {
    FALLBACKS.iter().find(|(n, _)| *n == name).copied()
}

/// Which built-in template suits a model without one:
///
/// - `qwen2`, `qwen2moe`, `qwen3`, `qwen3moe` → `chatml`;
/// - `gemma`, `gemma2`, `gemma3` → `gemma`;
/// - `phi3` → `phi3`;
/// - `llama` (and anything else) by its control tokens: `<|start_header_id|>` → `llama3`,
///   `<|im_start|>` (SmolLM2 and other ChatML fine-tunes) → `chatml`, `<|user|>` → `zephyr`;
///   a `llama` model with none of these → `llama2` (`[INST]`, also what Mistral v0.1 expects);
/// - any other architecture with none of these tokens → `chatml`.
pub fn choose_fallback(md: &Metadata) -> &'static str {
    let arch = md.get_str("general.architecture").unwrap_or("");
    match arch {
        "qwen2" | "qwen2moe" | "qwen3" | "qwen3moe" => return "chatml",
        "gemma" | "gemma2" | "gemma3" => return "gemma",
        "phi3" => return "phi3",
        _ => {}
    }
    let tokens = md.get_str_array("tokenizer.ggml.tokens").unwrap_or(&[]);
    let has = |t: &str| tokens.iter().any(|x| x == t);
    if has("<|start_header_id|>") {
        "llama3"
    } else if has("<|im_start|>") {
        "chatml"
    } else if has("<|user|>") {
        "zephyr"
    } else if arch == "llama" {
        "llama2"
    } else {
        "chatml"
    }
}

/// The text of token `key` (`tokenizer.ggml.bos_token_id` …), or "" when absent.
pub fn token_text(md: &Metadata, key: &str) -> String {
    let tokens = md.get_str_array("tokenizer.ggml.tokens").unwrap_or(&[]);
    md.get_u32(key).and_then(|id| tokens.get(id as usize)).cloned().unwrap_or_default()
}
