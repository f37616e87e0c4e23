// The built npm package on WebGPU in headless Chromium: SwiftShader's adapter (WebGPU on the CPU,
// no shader-f16, like many phones), so this proves the f32 / packed-f16 path. Greedy text must
// equal the llama.cpp golden (and the CPU backend's and the native CLI's); 'auto' must pass over
// a software adapter and say why. Needs ../shared/fixtures (skipped without, fails under CI=true).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { fixtures, openTestPage } from './harness.mjs';
const haveFixtures = fs.existsSync(path.join(fixtures, 'goldens'));
if (!haveFixtures) console.log(`SKIPPED: WebGPU browser tests need ${fixtures}`);
if (!haveFixtures && process.env.CI === 'true') test('fixtures are present', () => assert.fail(`${fixtures} is required under CI=true`));

describe('pocketllm on WebGPU (SwiftShader) in headless Chromium', { skip: haveFixtures ? false : `needs ${fixtures} (CI=true fails instead)` }, () => {
  let server, page;

  let inPage, close;

  before(async () => {
    ({ server, page, inPage, close } = await openTestPage({ webgpu: true }));
  });

  after(async () => {
    await close?.();
  });

  // F32 (exact on both backends) and a quantized file whose GPU greedy text is checked against
  // the CPU backend's in the same page (the GPU does not quantize activations, see README).
  for (const [model, golden] of [
    ['models/stories260k/stories260K-F32.gguf', 'goldens/stories260K-F32.json'],
    ['models/stories260k/stories260K-Q8_0.gguf', null],
  ]) {
    test(`backend 'webgpu' generates the same greedy text as the CPU: ${path.basename(model)}`, async () => {
      const r = await inPage(async ({ createEngine }, url) => {
        const run = async (backend) => {
          const engine = await createEngine({ model: url, backend });
          const res = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 48, temperature: 0 });
          // Sampled (top_k 40 by default: on WebGPU the top-k kernel picks the candidates).
          const sampled = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 32, temperature: 0.9, seed: 11 });
          const stream = [];
          for await (const c of await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 16, temperature: 0, stream: true })) {
            stream.push(c.choices[0].text ?? '');
          }
          const out = { text: res.choices[0].text, sampled: sampled.choices[0].text, usage: res.usage, stream: stream.join(''), backend: engine.backend, reason: engine.backendReason, heap: engine.info().wasm_memory_bytes, kv: engine.info().kv_cache, kvBytes: engine.info().kv_cache_bytes };
          await engine.unload();
          return out;
        };
        const adapter = await navigator.gpu.requestAdapter({ forceFallbackAdapter: false });
        const shaderF16 = adapter?.features.has('shader-f16') ?? false;
        // Asking for an f16 cache a device without shader-f16 cannot keep is a typed error, not
        // a silent f32; the CPU keeps either.
        const refusal = shaderF16 ? 'n/a' : await createEngine({ model: url, backend: 'webgpu', kvCache: 'f16' }).then(
          (e) => (e.unload(), 'loaded'),
          (e) => e.code,
        );
        const cpuF16 = await createEngine({ model: url, backend: 'cpu', kvCache: 'f16' });
        const cpuF16Info = cpuF16.info();
        const cpuF16Text = (await cpuF16.completions.create({ prompt: 'Once upon a time', max_tokens: 48, temperature: 0 })).choices[0].text;
        await cpuF16.unload();
        return { shaderF16, refusal, cpuF16: { kv: cpuF16Info.kv_cache, bytes: cpuF16Info.kv_cache_bytes, text: cpuF16Text }, gpu: await run('webgpu'), cpu: await run('cpu'), auto: await (async () => {
          const engine = await createEngine({ model: url });
          const out = { backend: engine.backend, reason: engine.backendReason };
          await engine.unload();
          return out;
        })() };
      }, `/fixtures/${model}`);
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      assert.equal(r.gpu.backend, 'webgpu', r.gpu.reason);
      assert.match(r.gpu.reason, /webgpu/);
      assert.equal(r.gpu.text, r.cpu.text);
      if (golden) {
        // F32: logits ~1e-6 apart, so the same seed draws the same tokens on both backends.
        assert.equal(r.gpu.sampled, r.cpu.sampled);
        assert.ok(!r.gpu.text.startsWith(r.gpu.sampled), `sampling at 0.9 leaves the greedy path: ${r.gpu.sampled}`);
      }
      // The f16 KV cache is the WebGPU default exactly where the device has shader-f16
      // (SwiftShader has not); the CPU keeps f32 unless asked, and then half the bytes.
      assert.equal(r.gpu.kv, r.shaderF16 ? 'f16' : 'f32');
      assert.equal(r.cpu.kv, 'f32');
      assert.equal(r.refusal, r.shaderF16 ? 'n/a' : 'invalid_argument');
      assert.equal(r.cpuF16.kv, 'f16');
      assert.equal(r.cpuF16.bytes * 2, r.cpu.kvBytes);
      assert.equal(r.cpuF16.text, r.cpu.text, 'stories260K keeps its greedy text over an f16 cache');
      // The weights streamed onto the GPU never sat in the wasm heap; on the CPU they live there.
      const size = fs.statSync(path.join(fixtures, model)).size;
      assert.ok(r.cpu.heap - r.gpu.heap > size / 2, `heap: cpu ${r.cpu.heap}, webgpu ${r.gpu.heap}, file ${size}`);
      console.log(`${path.basename(model)}: wasm heap on cpu ${r.cpu.heap} B, on webgpu ${r.gpu.heap} B (file ${size} B)`);
      if (golden) {
        const g = JSON.parse(fs.readFileSync(path.join(fixtures, golden), 'utf8'));
        assert.ok(g.prompt.greedy_text.startsWith(r.gpu.text), `${r.gpu.text} vs ${g.prompt.greedy_text}`);
      }
      assert.equal(r.gpu.usage.completion_tokens, 48);
      assert.ok(r.gpu.text.startsWith(r.gpu.stream), 'streamed text is the start of the same greedy text');
      // SwiftShader is a software adapter: 'auto' takes the CPU and says why.
      assert.equal(r.auto.backend, 'cpu', r.auto.reason);
      assert.match(r.auto.reason, /software renderer/);
      console.log(`${path.basename(model)}: webgpu decode ${r.gpu.usage.decode_tok_s.toFixed(1)} tok/s, cpu ${r.cpu.usage.decode_tok_s.toFixed(1)} tok/s`);
    });
  }

  test('a GPU lost mid-session: the same chat goes on on the CPU, and says so', async () => {
    const r = await inPage(async ({ createEngine }, url) => {
      const messages = [{ role: 'user', content: 'Tell me a story.' }];
      const ask = (engine, extra = {}) => engine.chat.completions.create({ messages, max_tokens: 24, temperature: 0, ...extra });
      const cpu = await createEngine({ model: url, backend: 'cpu' });
      const want = (await ask(cpu)).choices[0].message.content;
      await cpu.unload();
      const engine = await createEngine({ model: url, backend: 'webgpu' });
      const before = { backend: engine.backend, text: (await ask(engine)).choices[0].message.content };
      await engine._loseDeviceForTesting();
      const chunks = [];
      for await (const c of await ask(engine, { stream: true })) chunks.push(c.choices[0].delta.content ?? '');
      const after = { backend: engine.backend, reason: engine.backendReason, text: chunks.join('') };
      const again = (await ask(engine)).choices[0].message.content;
      await engine.unload();
      return { want, before, after, again };
    }, '/fixtures/models/stories260k/stories260K-F32.gguf');
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.before.backend, 'webgpu');
    assert.equal(r.before.text, r.want);
    assert.equal(r.after.backend, 'cpu');
    assert.match(r.after.reason, /GPU was lost/);
    assert.equal(r.after.text, r.want, 'the streamed answer after the loss is the whole answer, once');
    assert.equal(r.again, r.want);
  });
});
