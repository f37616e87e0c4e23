// The demo site (www/, served by scripts/serve-demo.mjs) in headless Chromium, driven through its
// UI like a person would: a model preselected by ?model= (the stories260K fixture), Load on the
// CPU backend, a chat reply streamed into the page while the page keeps drawing frames (the
// engine is in a worker), Stop ending a reply midway, and, after the service worker has taken
// over, the page and the model loading again with the server gone and the browser offline.
// Saves a screenshot to tests/browser/artifacts/demo.png. Needs ../shared/fixtures (skipped
// without, fails under CI=true).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serveDemo } from '../../scripts/serve-demo.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const fixtures = path.resolve(repo, '../shared/fixtures');
const MODEL = 'models/stories260k/stories260K-F32.gguf';
const SCREENSHOT = path.join(here, 'artifacts/demo.png');
const haveFixtures = fs.existsSync(path.join(fixtures, MODEL));

if (!haveFixtures) {
  if (process.env.CI === 'true') test('fixtures are present', () => assert.fail(`${fixtures} is missing; it is required under CI=true`));
  else console.log(`SKIPPED: the demo test needs ${fixtures}`);
}

describe('the demo site in headless Chromium', { skip: haveFixtures ? false : `needs ${fixtures} (CI=true fails instead)` }, () => {
  let server, ctx, page, profile;

  before(async () => {
    server = await serveDemo({ port: 0, extraRoots: { '/fixtures/': fixtures } });
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pocketllm-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1200, height: 800 },
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.on('console', (m) => m.type() !== 'log' && console.log(`[page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
    await page.goto(`${server.url}/?model=/fixtures/${MODEL}`);
  });

  after(async () => {
    await ctx?.close();
    await server?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  const state = () => page.getAttribute('body', 'data-state');
  const waitState = (s, timeout = 60000) => page.waitForSelector(`body[data-state="${s}"]`, { timeout });
  const lastReply = () =>
    page.$$eval('.msg.assistant', (els) => {
      const el = els.at(-1);
      return { text: el.querySelector('.text').textContent, stats: el.querySelector('.stats')?.textContent ?? '', finish: el.dataset.finish };
    });

  // Loads the preselected model on the CPU backend through the UI.
  async function loadModel() {
    await page.waitForFunction((m) => document.getElementById('model').value === m, `/fixtures/${MODEL}`);
    await page.selectOption('#backend', 'cpu');
    await page.click('#load');
    await waitState('ready');
    assert.equal(await page.textContent('#backend-used'), 'CPU');
    assert.match(await page.textContent('#backend-reason'), /cpu/);
    assert.match(await page.textContent('#engine-info'), /stories260K-F32\.gguf · llama/);
  }

  async function ask(text, maxTokens) {
    await page.fill('#max-tokens', String(maxTokens));
    await page.fill('#input', text);
    await page.click('#send');
  }

  test('loads the ?model= fixture, streams a chat reply, and the page keeps drawing frames meanwhile', async () => {
    await loadModel();
    await page.fill('#temperature', '0');
    // Greedy, this prompt runs to max_tokens (no end-of-text): long enough to watch the frames.
    const before = await page.evaluate(() => ({ frames: window.__frames, t: performance.now() }));
    await ask('Tell me a story about a cat.', 1500);
    await page.waitForFunction(() => document.querySelector('.msg.assistant .text')?.textContent.length > 0, null, { timeout: 30000 });
    await waitState('ready');
    const afterGen = await page.evaluate(() => ({ frames: window.__frames, t: performance.now() }));
    const reply = await lastReply();
    assert.ok(reply.text.trim().length > 100, reply.text);
    assert.match(reply.stats, /^\d+ tokens · prefill [\d.]+ tok\/s .* · decode [\d.]+ tok\/s · page \d+ fps/);
    const tokens = Number(reply.stats.split(' ')[0]);
    const seconds = (afterGen.t - before.t) / 1000;
    const frames = afterGen.frames - before.frames;
    console.log(`demo: ${tokens} tokens in ${seconds.toFixed(2)} s; the page drew ${frames} frames (${(frames / seconds).toFixed(0)} fps); ${reply.stats}`);
    // A page whose main thread ran the model would draw one or two frames in all that time.
    assert.ok(frames >= 10, `only ${frames} frames in ${seconds.toFixed(2)} s of generation`);
    assert.ok(frames / seconds >= 10, `${(frames / seconds).toFixed(1)} fps during generation`);
  });

  test('Stop ends a reply midway; a new chat works after it', async () => {
    await page.click('#new-chat');
    await page.fill('#temperature', '0');
    await ask('Tell me a story about a cat.', 1900);
    await page.waitForFunction(() => document.querySelector('.msg.assistant .text')?.textContent.length > 0, null, { timeout: 30000 });
    assert.equal(await state(), 'generating');
    await page.click('#stop');
    await waitState('ready');
    const stopped = await lastReply();
    assert.equal(stopped.finish, 'cancelled');
    assert.match(stopped.stats, /· stopped$/);
    assert.ok(Number(stopped.stats.split(' ')[0]) < 1900, stopped.stats);
    assert.ok(await page.isDisabled('#stop'));

    await ask('And then?', 16);
    await waitState('ready');
    const next = await lastReply();
    assert.ok(next.text.length > 0 && next.finish !== 'error', JSON.stringify(next));
    assert.equal(await page.isVisible('#error'), false);

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`demo screenshot: ${SCREENSHOT}`);
  });

  test('errors show their code', async () => {
    await page.selectOption('#model', '__url__');
    await page.fill('#url', '/fixtures/no-such-model.gguf');
    await page.click('#load');
    await page.waitForSelector('#error:not([hidden])');
    assert.equal(await state(), 'empty');
    assert.equal(await page.getAttribute('#error', 'data-code'), 'network');
    assert.match(await page.textContent('#error'), /^network .*404/);
  });

  test('a local .gguf opens through the file input', async () => {
    await page.setInputFiles('#file', path.join(fixtures, 'models/stories260k/stories260K-Q8_0.gguf'));
    assert.equal(await page.inputValue('#model'), '__file__');
    assert.match(await page.textContent('#model option[value="__file__"]'), /Local file: stories260K-Q8_0\.gguf/);
    await page.click('#load');
    await waitState('ready');
    assert.match(await page.textContent('#engine-info'), /stories260K-Q8_0\.gguf · llama/);
    assert.equal(await page.isVisible('#error'), false);
  });

  test('after one visit the page and the downloaded model work with the server gone and the browser offline', async () => {
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 30000 });
    assert.match(await page.textContent('#cached'), /stories260K-F32\.gguf/);
    await server.close();
    await ctx.setOffline(true);
    try {
      await page.reload();
      assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, 'the cached page kept its COOP/COEP headers');
      await loadModel();
      await ask('Hello', 24);
      await waitState('ready');
      const reply = await lastReply();
      assert.ok(reply.text.length > 0 && reply.finish !== 'error', JSON.stringify(reply));
    } finally {
      await ctx.setOffline(false);
    }
  });
});
