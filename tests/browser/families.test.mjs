// The Gemma 2, Gemma 3 and Phi-3 fixtures in the built package in headless Chromium, on the CPU
// backend and on WebGPU (SwiftShader): greedy continuations of the goldens' 24-token sequence
// (longer than Gemma's sliding window of 16, so local layers mask) equal llama.cpp's for as
// long as its top-2 margins are decisive. Needs ../shared/fixtures (skipped without, fails
// under CI=true).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { fixtures, openTestPage } from './harness.mjs';
const haveFixtures = fs.existsSync(path.join(fixtures, 'goldens'));
if (!haveFixtures) console.log(`SKIPPED: family browser tests need ${fixtures}`);
if (!haveFixtures && process.env.CI === 'true') test('fixtures are present', () => assert.fail(`${fixtures} is required under CI=true`));

// A step is compared while llama.cpp's top-2 margin exceeds twice the F32 tolerance of
// tests/parity.rs with Gemma's f16-table GELU (1e-3 + 1e-4 |x|, logits within +-4).
const MARGIN = 4e-3;

describe('model families in headless Chromium', { skip: haveFixtures ? false : `needs ${fixtures} (CI=true fails instead)` }, () => {
  let inPage, close;

  before(async () => {
    ({ inPage, close } = await openTestPage({ webgpu: true }));
  });

  after(async () => {
    await close?.();
  });

  for (const name of ['gemma2-F32', 'gemma3-F32', 'phi3-F32']) {
    test(`${name}: greedy tokens equal llama.cpp's on the CPU and on WebGPU`, async () => {
      const golden = JSON.parse(fs.readFileSync(path.join(fixtures, `goldens/${name}.json`), 'utf8'));
      const seq = golden.sequences[2];
      const decisive = seq.greedy.top1_minus_top2.findIndex((m) => m <= MARGIN);
      const n = decisive === -1 ? seq.greedy.tokens.length : decisive;
      assert.ok(n >= 4, `${name}: only ${n} decisive steps`);
      const r = await inPage(async ({ createEngine }, { url, prompt, want }) => {
        const out = {};
        for (const backend of ['cpu', 'webgpu']) {
          const engine = await createEngine({ model: url, backend, contextLength: 128, kvCache: 'f32' });
          const res = await engine.completions.create({ prompt, max_tokens: want.length, temperature: 0, ignore_eos: true });
          out[backend] = { text: res.choices[0].text, want: await engine.detokenize(want), arch: engine.info().architecture, backend: engine.backend };
          await engine.unload();
        }
        return out;
      }, { url: `/fixtures/models/random/${name}.gguf`, prompt: seq.tokens, want: seq.greedy.tokens.slice(0, n) });
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      for (const backend of ['cpu', 'webgpu']) {
        assert.equal(r[backend].backend, backend);
        assert.equal(r[backend].arch, golden.architecture);
        assert.equal(r[backend].text, r[backend].want, `${name} on ${backend}`);
      }
    });
  }
});
