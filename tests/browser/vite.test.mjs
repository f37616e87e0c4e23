// A Vite app that imports the package by name (tests/vite-app, `pocketllm` as file:../../pkg):
// `vite build` must turn the package's module worker and its wasm into working assets, and the
// built app, served statically, must complete 'Once upon a time' greedily into exactly the
// llama.cpp golden. Needs tests/vite-app/node_modules (`npm ci` there; .ci/run does it) and
// ../shared/fixtures: without them this is skipped, or fails under CI=true.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const app = path.join(repo, 'tests/vite-app');
const fixtures = path.resolve(repo, '../shared/fixtures');
const MODEL = 'models/stories260k/stories260K-F32.gguf';
const vite = path.join(app, 'node_modules/.bin/vite');

const missing = [
  !fs.existsSync(path.join(fixtures, MODEL)) && fixtures,
  !fs.existsSync(vite) && `${path.relative(repo, app)}/node_modules (run: cd tests/vite-app && npm ci)`,
].filter(Boolean);
if (missing.length) {
  if (process.env.CI === 'true') test('the Vite app can be built', () => assert.fail(`missing: ${missing.join(', ')}`));
  else console.log(`SKIPPED: the Vite app test needs ${missing.join(' and ')}`);
}

describe('a Vite app that imports pocketllm', { skip: missing.length ? `needs ${missing.join(' and ')}` : false }, () => {
  const dist = path.join(app, 'dist');
  let server, browser;

  before(async () => {
    execFileSync(vite, ['build', '--outDir', dist, '--emptyOutDir', '--logLevel', 'warn'], { cwd: app, stdio: 'inherit' });
    server = await serve({ '/fixtures/': fixtures, '/': dist });
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
    });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('vite build bundles the worker and the wasm; the built app gives the llama.cpp greedy text', async () => {
    const built = fs.readdirSync(path.join(dist, 'assets'));
    assert.ok(built.some((f) => f.endsWith('.wasm')), `no .wasm among ${built.join(', ')}`);

    const page = await browser.newPage();
    page.on('console', (m) => console.log(`[page] ${m.text()}`));
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
    await page.goto(`${server.url}/index.html?model=/fixtures/${MODEL}`);
    await page.waitForFunction(() => window.__result, null, { timeout: 60000 });
    const result = await page.evaluate(() => window.__result);
    assert.equal(result.error, undefined, JSON.stringify(result.error));

    const golden = JSON.parse(fs.readFileSync(path.join(fixtures, 'goldens/stories260K-F32.json'), 'utf8'));
    assert.equal(result.text, golden.prompt.greedy_text);
    assert.equal(result.backend, 'cpu');
    assert.equal(await page.textContent('#out'), golden.prompt.greedy_text);
    // The wasm the worker ran is Vite's hashed asset, not a file from the package folder.
    assert.ok(server.requests.some((p) => /^\/assets\/.*\.wasm$/.test(p)), server.requests.join(' '));
    assert.ok(!server.requests.some((p) => p.includes('generated/')), server.requests.join(' '));
    await page.close();
  });
});
