// Type declarations for the pocketllm npm package (hand-written; the wasm-bindgen glue in
// generated/ is internal to the worker).

/** Stable error codes: every rejection is a PocketLLMError with one of these. */
export type PocketLLMErrorCode =
  | 'webgpu_unavailable'
  | 'model_too_large'
  | 'bad_gguf'
  | 'unsupported_model'
  | 'network'
  | 'aborted'
  | 'context_full'
  | 'device_lost'
  | 'invalid_argument'
  | 'invalid_request'
  | 'invalid_state'
  | 'tokenizer'
  | 'busy'
  | 'io'
  | 'internal';

export class PocketLLMError extends Error {
  constructor(code: PocketLLMErrorCode, message: string);
  readonly name: 'PocketLLMError';
  readonly code: PocketLLMErrorCode;
}

/** `hf:owner/repo[@revision]/file.gguf` → its Hugging Face resolve URL; other strings → absolute URLs. */
export function resolveModelUrl(spec: string): string;

export type Backend = 'auto' | 'webgpu' | 'cpu';

export interface LoadProgress {
  /** 'download': bytes fetched from a URL; 'read': bytes read from a File/Blob/ArrayBuffer;
   *  'upload': tensors handed to the backend (loaded/total count tensors). */
  phase: 'download' | 'cache' | 'read' | 'upload';
  loaded: number;
  /** Undefined while a download's size is unknown (no Content-Length). */
  total?: number;
}

export interface CreateEngineOptions {
  /** A URL (absolute or relative to the page), 'hf:owner/repo[@revision]/file.gguf', a File/Blob or an ArrayBuffer (copied). */
  model: string | URL | Blob | ArrayBuffer | ArrayBufferView;
  /** 'webgpu': the browser's WebGPU (rejects with 'webgpu_unavailable' without an adapter); 'cpu': SIMD wasm; 'auto' (default): a hardware WebGPU adapter, else the CPU (see Engine.backendReason). */
  backend?: Backend;
  /** KV cache length in tokens; 0 (default) = the model's training context, at most 4096. */
  contextLength?: number;
  /** The KV cache's values. Default: 'f16' on WebGPU devices with shader-f16 (half the memory,
   *  as llama.cpp keeps it), else 'f32'. The CPU keeps either ('f16': half the wasm heap for the
   *  cache, a little slower); 'f16' on a WebGPU device without shader-f16 rejects with
   *  'invalid_argument'. Engine.info.kv_cache says which it got. */
  kvCache?: 'f32' | 'f16';
  /** Host memory the engine may use. A model needing more (weights held twice while loading, the
   *  KV cache for contextLength, activations) is refused with 'model_too_large' as soon as its
   *  header has arrived, before the rest is downloaded. Default: 4 GiB (wasm32's limit), or half of
   *  navigator.deviceMemory where the browser tells it. */
  maxMemoryBytes?: number;
  /** Keep a model loaded by URL in Cache Storage (keyed by URL) and load it from there next time,
   *  offline too (phase 'cache'). A download that breaks off or a file that fails to load is
   *  never kept. Default true. */
  cache?: boolean;
  onProgress?: (p: LoadProgress) => void;
  /** Aborting rejects createEngine with code 'aborted' and stops the worker. */
  signal?: AbortSignal;
  /** Where worker.js is, if a bundler moved it. Default: next to index.js. */
  workerUrl?: string | URL;
}

export interface GenerationParams {
  max_tokens?: number;
  /** 0 = greedy. Default 0.8. */
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  seed?: number;
  stop?: string | string[];
  /** Generate exactly max_tokens, past end-of-generation tokens (benchmarks). */
  ignore_eos?: boolean;
  stream?: boolean;
  /** Echoed in responses; the loaded model is used whatever it says. */
  model?: string;
  /** Same as the second argument's signal. */
  signal?: AbortSignal;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
}

export interface ChatCompletionParams extends GenerationParams {
  messages: ChatMessage[];
}

export interface CompletionParams extends GenerationParams {
  /** Text (the model's BOS token is added), or token ids used as they are. */
  prompt: string | number[];
  /** Add the BOS token to a text prompt. Default true. */
  add_special?: boolean;
}

export interface RequestOptions {
  /** Aborting stops the generation before its next token: the result (or last stream chunk)
   *  has finish_reason 'cancelled' and the text generated so far. No error is thrown. */
  signal?: AbortSignal;
}

/** 'cancelled': stopped by an AbortSignal or by leaving a stream's for-await loop. */
export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** cached_tokens: prompt tokens whose KV entries were reused from the previous request. */
  prompt_tokens_details: { cached_tokens: number };
  prefill_tok_s: number;
  decode_tok_s: number;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: [{ index: 0; message: { role: 'assistant'; content: string }; finish_reason: FinishReason; logprobs: null }];
  usage: Usage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  /** The last chunk has an empty delta, the finish_reason, and usage. */
  choices: [{ index: 0; delta: { role?: 'assistant'; content?: string }; finish_reason: FinishReason | null }];
  usage?: Usage;
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: [{ index: 0; text: string; finish_reason: FinishReason | null; logprobs: null }];
  /** On a whole result, and on the last chunk of a stream. */
  usage?: Usage;
}

export interface ModelInfo {
  architecture: string;
  name: string | null;
  parameter_count: number;
  vocab_size: number;
  context_length: number;
  training_context_length: number;
  /** 'gguf', or the fallback template's name when the file has none. */
  chat_template: string;
  backend: 'webgpu' | 'cpu';
  backend_reason: string;
  /** The KV cache's values: 'f16' or 'f32' (see CreateEngineOptions.kvCache). */
  kv_cache: 'f32' | 'f16';
  /** Bytes the KV cache takes (on the GPU with WebGPU, in the wasm heap on the CPU). */
  kv_cache_bytes: number;
}

export interface PocketEngine {
  readonly backend: 'webgpu' | 'cpu';
  /** Why this backend: what was asked for and the adapter, or why WebGPU was not used. */
  readonly backendReason: string;
  chat: {
    completions: {
      create(body: ChatCompletionParams & { stream: true }, options?: RequestOptions): Promise<AsyncIterable<ChatCompletionChunk>>;
      create(body: ChatCompletionParams & { stream?: false }, options?: RequestOptions): Promise<ChatCompletion>;
    };
  };
  completions: {
    create(body: CompletionParams & { stream: true }, options?: RequestOptions): Promise<AsyncIterable<Completion>>;
    create(body: CompletionParams & { stream?: false }, options?: RequestOptions): Promise<Completion>;
  };
  /** Token ids of a text (with BOS unless addSpecial is false). */
  tokenize(text: string, options?: { addSpecial?: boolean; parseSpecial?: boolean }): Promise<number[]>;
  detokenize(tokens: ArrayLike<number>): Promise<string>;
  info(): ModelInfo;
  /** Forgets the cached conversation. */
  reset(): Promise<void>;
  /** Terminates the worker; later calls reject with code 'invalid_state'. */
  unload(): Promise<void>;
}

/** Loads a model in a new Web Worker and resolves when it is ready. */
export function createEngine(options: CreateEngineOptions): Promise<PocketEngine>;

/** Models downloaded before and kept for offline use. */
export function listCachedModels(): Promise<{ url: string; bytes: number }[]>;
/** Forgets a downloaded model (a URL or an `hf:` spec); resolves to whether it was there. */
export function deleteCachedModel(model: string): Promise<boolean>;
