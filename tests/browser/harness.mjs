// What the page-driving browser tests share: the static server (package, fixtures, test page),
// a headless Chromium on a fresh profile (SwiftShader's WebGPU adapter when `webgpu`), the page
// loaded with window.pocketllm, and `inPage` to run code against the package there.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './server.mjs';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../..');
export const fixtures = path.resolve(repo, '../shared/fixtures');

const BASE_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];
const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];

/** Starts the server and the browser and opens the test page; `close()` stops both. */
export async function openTestPage({ webgpu = false, logConsole = true } = {}) {
  const server = await serve({ '/pkg/': path.join(repo, 'pkg'), '/fixtures/': fixtures, '/': here });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pocketllm-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: webgpu ? [...BASE_ARGS, ...WEBGPU_ARGS] : BASE_ARGS,
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  if (logConsole) page.on('console', (m) => console.log(`[page] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto(`${server.url}/page.html`);
  await page.waitForFunction(() => window.__ready, null, { timeout: 30000 });
  // Runs `fn(pocketllm, arg)` in the page; errors come back as { error: { name, code, message } }.
  const inPage = (fn, arg) =>
    page.evaluate(
      async ([src, arg]) => {
        try {
          return await (0, eval)(`(${src})`)(window.pocketllm, arg);
        } catch (e) {
          return { error: { name: e?.name, code: e?.code, message: String(e?.message ?? e) } };
        }
      },
      [fn.toString(), arg],
    );
  const close = async () => {
    await ctx.close();
    await server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { server, page, inPage, close };
}
