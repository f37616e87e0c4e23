// The built npm package (pkg/, after scripts/build-wasm.sh) in a real headless Chromium:
// stories260K generates the llama.cpp golden greedily, streams, aborts, refuses a bad file with
// code bad_gguf and reports progress. Needs ../shared/fixtures: without it these tests are
// skipped, or fail under CI=true. Run: cd tests/browser && npm ci && npm test
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { fixtures, openTestPage, repo } from './harness.mjs';
const MODEL = 'models/stories260k/stories260K-F32.gguf';
const haveFixtures = fs.existsSync(path.join(fixtures, MODEL));

if (!haveFixtures) {
  if (process.env.CI === 'true') {
    test('fixtures are present', () => assert.fail(`${fixtures} is missing; it is required under CI=true`));
  } else {
    console.log(`SKIPPED: browser tests need ${fixtures}`);
  }
}
if (!fs.existsSync(path.join(repo, 'pkg/generated/pocketllm_bg.wasm'))) {
  test('the wasm package is built', () => assert.fail('pkg/generated is missing: run scripts/build-wasm.sh first'));
}

describe('pocketllm in headless Chromium (CPU backend)', { skip: haveFixtures ? false : `needs ${fixtures} (CI=true fails instead)` }, () => {
  const golden = haveFixtures ? JSON.parse(fs.readFileSync(path.join(fixtures, 'goldens/stories260K-F32.json'), 'utf8')) : null;
  let server, page;

  let inPage, close;

  before(async () => {
    ({ server, page, inPage, close } = await openTestPage());
  });

  after(async () => {
    await close?.();
  });

  test('greedy completion equals the llama.cpp golden (and the native CLI), with progress events', async () => {
    const r = await inPage(async ({ createEngine }, url) => {
      const progress = [];
      const engine = await createEngine({ model: url, backend: 'cpu', onProgress: (p) => progress.push(p) });
      const res = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 64, temperature: 0 });
      const tokens = await engine.tokenize('Once upon a time');
      // The page itself never fetched the wasm module or the model: the worker did.
      const pageFetched = performance.getEntriesByType('resource').map((e) => e.name).filter((n) => /\.(wasm|gguf)$/.test(n));
      const out = { res, progress, info: engine.info(), backend: engine.backend, reason: engine.backendReason, tokens, isolated: self.crossOriginIsolated, pageFetched };
      await engine.unload();
      return out;
    }, `/fixtures/${MODEL}`);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.res.object, 'text_completion');
    assert.equal(r.res.choices[0].text, golden.prompt.greedy_text);
    assert.equal(r.res.choices[0].finish_reason, 'length');
    assert.equal(r.res.usage.completion_tokens, 64);
    assert.equal(r.res.usage.prompt_tokens, 5);
    assert.equal(r.res.usage.total_tokens, 69);
    assert.ok(r.res.usage.decode_tok_s > 0);
    assert.deepEqual(r.tokens, golden.prompt.token_ids_with_bos);
    assert.equal(r.backend, 'cpu');
    assert.match(r.reason, /requested/);
    assert.equal(r.info.architecture, 'llama');
    assert.equal(r.info.vocab_size, 512);
    assert.ok(r.isolated, 'the test page is cross-origin isolated (COOP/COEP)');
    assert.deepEqual(r.pageFetched, [], 'the engine runs in the worker, not on the page');
    const size = fs.statSync(path.join(fixtures, MODEL)).size;
    const download = r.progress.filter((p) => p.phase === 'download');
    assert.ok(download.length >= 1, JSON.stringify(r.progress));
    assert.deepEqual(download.at(-1), { phase: 'download', loaded: size, total: size });
    const upload = r.progress.filter((p) => p.phase === 'upload');
    assert.ok(upload.length > 1 && upload.at(-1).loaded === upload.at(-1).total, JSON.stringify(upload.at(-1)));
  });

  test('streamed completion and chat chunks add up to the same text; the last chunk has finish_reason and usage', async () => {
    const r = await inPage(async ({ createEngine }, url) => {
      const engine = await createEngine({ model: url });
      const chunks = [];
      for await (const c of await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 64, temperature: 0, stream: true })) chunks.push(c);
      const chatChunks = [];
      const stream = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, temperature: 0, stream: true });
      for await (const c of stream) chatChunks.push(c);
      const chat = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, temperature: 0 });
      await engine.unload();
      return { chunks, chatChunks, chat, reason: engine.backendReason };
    }, `/fixtures/${MODEL}`);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.match(r.reason, /^auto: no WebGPU adapter: .*CPU \(SIMD wasm\)/);
    assert.ok(r.chunks.length > 10, `${r.chunks.length} chunks`);
    assert.equal(r.chunks.map((c) => c.choices[0].text).join(''), golden.prompt.greedy_text);
    const last = r.chunks.at(-1);
    assert.equal(last.choices[0].finish_reason, 'length');
    assert.equal(last.usage.completion_tokens, 64);
    assert.ok(r.chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null && c.usage === undefined));
    // Chat: OpenAI's chunk shape, the same text as the non-streamed call.
    assert.equal(r.chatChunks[0].object, 'chat.completion.chunk');
    assert.equal(r.chatChunks[0].choices[0].delta.role, 'assistant');
    const streamed = r.chatChunks.map((c) => c.choices[0].delta.content ?? '').join('');
    assert.equal(streamed, r.chat.choices[0].message.content);
    assert.ok(streamed.length > 0);
    assert.equal(r.chat.object, 'chat.completion');
    assert.ok(r.chatChunks.at(-1).usage.prompt_tokens > 0);
  });

  test('abort mid-stream: no more text, finish_reason cancelled, the worker stops early; then requests give the golden again', async () => {
    const r = await inPage(async ({ createEngine }, url) => {
      const engine = await createEngine({ model: url });
      const ac = new AbortController();
      const chunks = [];
      const stream = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 64, temperature: 0, stream: true }, { signal: ac.signal });
      for await (const c of stream) {
        chunks.push(c);
        if (chunks.length === 3) ac.abort();
      }
      const ac3 = new AbortController();
      const long = [];
      for await (const c of await engine.completions.create({ prompt: 'Once', max_tokens: 400, ignore_eos: true, stream: true }, { signal: ac3.signal })) {
        long.push(c);
        ac3.abort();
      }
      // Aborting a non-streamed request, and one whose signal is already aborted.
      const ac2 = new AbortController();
      const pending = engine.completions.create({ prompt: 'Once upon a time', max_tokens: 64, temperature: 0, ignore_eos: true }, { signal: ac2.signal });
      setTimeout(() => ac2.abort(), 0);
      const aborted = await pending;
      const pre = await engine.completions.create({ prompt: 'Once', max_tokens: 4 }, { signal: AbortSignal.abort() });
      // Leaving a for-await loop early cancels too.
      for await (const c of await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 64, stream: true })) break;
      const again = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 64, temperature: 0 });
      const byTokens = await engine.completions.create({ prompt: [1, 403, 407, 261, 378], max_tokens: 10, temperature: 0, ignore_eos: true });
      await engine.unload();
      return { chunks, aborted, pre, again, byTokens, long: long.at(-1) };
    }, `/fixtures/${MODEL}`);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    const last = r.chunks.at(-1);
    assert.equal(last.choices[0].finish_reason, 'cancelled');
    // Three text chunks were read when abort() ran: the reader sees no more text, only the
    // final chunk (chunks the worker had already sent are dropped).
    assert.equal(r.chunks.length, 4);
    assert.deepEqual(last.choices[0].delta ?? last.choices[0].text, '');
    assert.ok(last.usage.completion_tokens >= 3, JSON.stringify(last.usage));
    // The worker stopped early: a long generation aborted after its first chunk.
    assert.equal(r.long.choices[0].finish_reason, 'cancelled');
    assert.ok(r.long.usage.completion_tokens < 400, JSON.stringify(r.long.usage));
    assert.equal(r.aborted.choices[0].finish_reason, 'cancelled');
    assert.ok(r.aborted.usage.completion_tokens < 64, JSON.stringify(r.aborted.usage));
    assert.ok(golden.prompt.greedy_text.startsWith(r.aborted.choices[0].text));
    assert.equal(r.pre.choices[0].finish_reason, 'cancelled');
    assert.equal(r.pre.choices[0].text, '');
    assert.equal(r.again.choices[0].text, golden.prompt.greedy_text);
    assert.equal(r.again.choices[0].finish_reason, 'length');
    assert.deepEqual(r.byTokens.usage.completion_tokens, 10);
    assert.ok(golden.prompt.greedy_text.startsWith(r.byTokens.choices[0].text));
  });

  test('a corrupt GGUF is refused with code bad_gguf (URL and ArrayBuffer); webgpu and bad input have codes', async () => {
    const r = await inPage(async ({ createEngine, PocketLLMError }, url) => {
      const codes = {};
      const code = async (name, f) => {
        try {
          await f();
          codes[name] = 'resolved';
        } catch (e) {
          codes[name] = `${e instanceof PocketLLMError ? 'PocketLLMError' : e?.name}:${e.code}`;
        }
      };
      const good = new Uint8Array(await (await fetch(url)).arrayBuffer());
      const badMagic = good.slice();
      badMagic.set([0x58, 0x58, 0x58, 0x58], 0);
      const truncated = good.slice(0, good.length - 1000);
      const garbage = good.slice();
      garbage.set(new Uint8Array(64).fill(0xff), 8); // tensor and metadata counts
      await code('bad_magic', () => createEngine({ model: badMagic.buffer }));
      await code('truncated', () => createEngine({ model: new Blob([truncated]) }));
      await code('garbage_counts', () => createEngine({ model: garbage }));
      await code('not_gguf_url', () => createEngine({ model: '/page.html' }));
      await code('http_404', () => createEngine({ model: '/fixtures/nope.gguf' }));
      await code('webgpu', () => createEngine({ model: url, backend: 'webgpu' }));
      await code('bad_hf', () => createEngine({ model: 'hf:nope' }));
      // 1.2 MB of weights, held twice while loading: refused from the header under a 1 MB budget.
      await code('too_big', () => createEngine({ model: url, maxMemoryBytes: 1e6 }));
      await code('abort_load', () => {
        const ac = new AbortController();
        const p = createEngine({ model: url, signal: ac.signal });
        ac.abort();
        return p;
      });
      const readProgress = [];
      const engine = await createEngine({ model: new File([good], 'stories.gguf'), onProgress: (p) => readProgress.push(p) });
      await code('no_messages', () => engine.chat.completions.create({}));
      await code('bad_param', () => engine.completions.create({ prompt: 'x', max_tokens: 0 }));
      await code('token_range', () => engine.completions.create({ prompt: [1, 99999] }));
      const ok = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 64, temperature: 0 });
      await engine.unload();
      await code('after_unload', () => engine.completions.create({ prompt: 'x' }));
      return { codes, ok: ok.choices[0].text, model: ok.model, read: readProgress.filter((p) => p.phase === 'read').at(-1), size: good.length };
    }, `/fixtures/${MODEL}`);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.deepEqual(r.codes, {
      bad_magic: 'PocketLLMError:bad_gguf',
      truncated: 'PocketLLMError:bad_gguf',
      garbage_counts: 'PocketLLMError:bad_gguf',
      not_gguf_url: 'PocketLLMError:bad_gguf',
      http_404: 'PocketLLMError:network',
      webgpu: 'PocketLLMError:webgpu_unavailable',
      bad_hf: 'PocketLLMError:invalid_argument',
      too_big: 'PocketLLMError:model_too_large',
      abort_load: 'PocketLLMError:aborted',
      no_messages: 'PocketLLMError:invalid_request',
      bad_param: 'PocketLLMError:invalid_argument',
      token_range: 'PocketLLMError:invalid_argument',
      after_unload: 'PocketLLMError:invalid_state',
    });
    // The engine works after the errors, from a File.
    assert.equal(r.ok, golden.prompt.greedy_text);
    assert.equal(r.model, 'stories.gguf');
    assert.deepEqual(r.read, { phase: 'read', loaded: r.size, total: r.size });
  });

  test('hf: specs resolve to the Hugging Face resolve URL', async () => {
    const r = await inPage(async ({ resolveModelUrl }) => [
      resolveModelUrl('hf:ggml-org/models/tinyllamas/stories260K.gguf'),
      resolveModelUrl('hf:owner/repo@abc123/dir/m.gguf'),
      resolveModelUrl('/fixtures/x.gguf'),
    ]);
    assert.deepEqual(r.slice(0, 2), [
      'https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf',
      'https://huggingface.co/owner/repo/resolve/abc123/dir/m.gguf',
    ]);
    assert.equal(r[2], `${server.url}/fixtures/x.gguf`);
  });
});
