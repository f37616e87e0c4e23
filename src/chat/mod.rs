//! PLACEHOLDER replaced by the chat-template branch on merge: the agreed API, rendering ChatML.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ChatError {
    #[error("no messages")]
    EmptyMessages,
    #[error("unknown role {0:?}")]
    UnknownRole(String),
}

pub enum TemplateSource {
    Gguf,
    Fallback(&'static str),
}

pub struct ChatTemplate;

impl ChatTemplate {
    pub fn from_gguf(_md: &crate::gguf::Metadata) -> Result<(Self, TemplateSource), ChatError> {
        Ok((ChatTemplate, TemplateSource::Fallback("chatml")))
    }

    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String, ChatError> {
        if messages.is_empty() {
            return Err(ChatError::EmptyMessages);
        }
        let mut s = String::new();
        for m in messages {
            s.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content));
        }
        if add_generation_prompt {
            s.push_str("<|im_start|>assistant\n");
        }
        Ok(s)
    }
}
