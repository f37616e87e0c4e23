// pocketllm in headless Chromium, both backends: load time, prefill and decode tok/s of the
// built npm package (pkg/, after scripts/build-wasm.sh), per model, alternating 'cpu' and
// 'webgpu' and taking the best of --repeats. WebGPU is SwiftShader's adapter (WebGPU on the
// CPU), as in tests/browser/webgpu.test.mjs: these numbers check the path, not GPU speed.
//
//   node bench/browser_bench.mjs MODEL.gguf [MODEL2.gguf ...] [--prompt-tokens 64] [--gen-tokens 16] [--repeats 2]
//        [--backends cpu,webgpu]   (a backend may name its KV cache: cpu:f16, webgpu:f32)
//
// Uses tests/browser's playwright-core (cd tests/browser && npm ci) and /usr/bin/chromium
// (or $CHROMIUM); never downloads a browser. Prints a Markdown table.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const browserTests = path.join(repo, 'tests/browser');
const { chromium } = createRequire(path.join(browserTests, 'package.json'))('playwright-core');
const { serve } = await import(path.join(browserTests, 'server.mjs'));

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

function parseArgs(argv) {
  const opts = { models: [], promptTokens: 64, genTokens: 16, repeats: 2, backends: ['cpu', 'webgpu'] };
  const flags = { '--prompt-tokens': 'promptTokens', '--gen-tokens': 'genTokens', '--repeats': 'repeats' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [name, inline] = a.split('=', 2);
    if (flags[name]) {
      const v = Number(inline ?? argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${name} wants a positive integer`);
      opts[flags[name]] = v;
    } else if (name === '--backends') {
      opts.backends = (inline ?? argv[++i] ?? '').split(',').filter(Boolean);
      for (const b of opts.backends) {
        if (!/^(cpu|webgpu)(:(f16|f32))?$/.test(b)) throw new Error(`--backends: ${b} is not cpu or webgpu, optionally :f16 or :f32`);
      }
    } else if (a === '-h' || a === '--help') {
      console.log('usage: node bench/browser_bench.mjs MODEL.gguf [MODEL2.gguf ...] [--prompt-tokens 64] [--gen-tokens 16] [--repeats 2] [--backends cpu,webgpu]');
      process.exit(0);
    } else if (a.startsWith('--')) {
      throw new Error(`unknown option ${a}`);
    } else {
      opts.models.push(path.resolve(a));
    }
  }
  if (opts.models.length === 0) throw new Error('give at least one .gguf file (--help)');
  for (const m of opts.models) if (!fs.statSync(m, { throwIfNoEntry: false })?.isFile()) throw new Error(`no such file: ${m}`);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const BACKENDS = opts.backends;
// A snapshot of pkg/, so that a rebuild while this runs (workers and the wasm are fetched on every
// createEngine) cannot mix two builds into one table.
if (!fs.existsSync(path.join(repo, 'pkg/generated/pocketllm_bg.wasm'))) throw new Error('pkg/generated is missing: run scripts/build-wasm.sh first');
const pkgSnapshot = fs.mkdtempSync(path.join(os.tmpdir(), 'pocketllm-bench-pkg-'));
fs.cpSync(path.join(repo, 'pkg'), pkgSnapshot, { recursive: true, filter: (src) => !src.includes(`${path.sep}node_modules`) });
let head = '?';
try {
  head = execFileSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
} catch {}
const wasm = fs.readFileSync(path.join(pkgSnapshot, 'generated/pocketllm_bg.wasm'));
const wasmSizes = {
  raw: wasm.length,
  gzipDefault: zlib.gzipSync(wasm).length,
  gzip9: zlib.gzipSync(wasm, { level: 9 }).length,
};

// Each model's directory under its own prefix; '/' (the test page) last, as prefixes match in order.
const roots = { '/pkg/': pkgSnapshot };
const modelUrls = opts.models.map((m, i) => {
  roots[`/m${i}/`] = path.dirname(m);
  return `/m${i}/${encodeURIComponent(path.basename(m))}`;
});
roots['/'] = browserTests;

const server = await serve(roots);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pocketllm-bench-chromium-'));
let ctx;
try {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  page.on('console', (m) => {
    // The browser asks for /favicon.ico, which the server does not have.
    if ((m.type() === 'error' || m.type() === 'warning') && !m.location().url?.endsWith('/favicon.ico')) console.error(`[page ${m.type()}] ${m.text()} ${m.location().url ?? ''}`);
  });
  await page.goto(`${server.url}/page.html`);
  await page.waitForFunction(() => window.__ready, null, { timeout: 30000 });
  // A persistent context has no Browser object (ctx.browser() is null): take the version from the page.
  const version = ctx.browser()?.version() ?? (await page.evaluate(() => /Chrome\/([\d.]+)/.exec(navigator.userAgent)?.[1] ?? navigator.userAgent));

  // One measurement: load, a warm-up request, reset, the timed request, unload.
  const measure = (url, spec) =>
    page.evaluate(
      async ({ url, spec, promptTokens, genTokens }) => {
        const { createEngine } = window.pocketllm;
        const [backend, kvCache] = spec.split(':');
        let engine;
        try {
          const t0 = performance.now();
          engine = await createEngine({ model: url, backend, kvCache, cache: false }); // download every time, not from Cache Storage
          const loadMs = performance.now() - t0;
          const info = engine.info();
          const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919 + 13) % info.vocab_size);
          const body = { prompt, max_tokens: genTokens, ignore_eos: true, temperature: 0 };
          // Warm-up: the same prompt and 2 tokens, so that both the prefill and the decode paths
          // (shader pipelines on WebGPU) have run once; then forget it so nothing is cached.
          await engine.completions.create({ ...body, max_tokens: 2 });
          await engine.reset();
          const t1 = performance.now();
          const res = await engine.completions.create(body);
          const requestMs = performance.now() - t1;
          const u = res.usage;
          return {
            loadMs, requestMs, backend: engine.backend, kvCache: info.kv_cache, reason: engine.backendReason,
            info: { architecture: info.architecture, parameter_count: info.parameter_count, vocab_size: info.vocab_size },
            promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens,
            cached: u.prompt_tokens_details?.cached_tokens ?? u.cached_tokens,
            prefill: u.prefill_tok_s, decode: u.decode_tok_s,
          };
        } catch (e) {
          return { error: `${e?.code ?? e?.name}: ${e?.message ?? e}` };
        } finally {
          await engine?.unload();
        }
      },
      { url, spec, promptTokens: opts.promptTokens, genTokens: opts.genTokens },
    );

  const results = []; // { model, backend, best: { loadMs, prefill, decode }, reason, info, error }
  const started = Date.now();
  for (const [mi, model] of opts.models.entries()) {
    const name = path.basename(model);
    const runs = Object.fromEntries(BACKENDS.map((b) => [b, []]));
    const errors = {};
    for (let r = 0; r < opts.repeats; r++) {
      // Alternate the order between repeats so neither backend always runs first.
      const order = r % 2 === 0 ? BACKENDS : [...BACKENDS].reverse();
      for (const backend of order) {
        if (errors[backend]) continue;
        const m = await measure(modelUrls[mi], backend);
        if (m.error) {
          errors[backend] = m.error;
          console.error(`${name} ${backend}: ${m.error}`);
          continue;
        }
        const [wanted, kv] = backend.split(':');
        if (m.backend !== wanted) throw new Error(`${name}: asked for ${wanted}, got ${m.backend} (${m.reason})`);
        if (kv && m.kvCache !== kv) throw new Error(`${name}: asked for a ${kv} KV cache, got ${m.kvCache}`);
        if (m.cached !== 0) throw new Error(`${name} ${backend}: ${m.cached} prompt tokens were cached; reset() did not forget them`);
        if (m.promptTokens !== opts.promptTokens || m.completionTokens !== opts.genTokens) {
          throw new Error(`${name} ${backend}: ${m.promptTokens} prompt / ${m.completionTokens} generated tokens, wanted ${opts.promptTokens} / ${opts.genTokens}`);
        }
        runs[backend].push(m);
        console.error(`${name} ${backend} #${r + 1}: load ${m.loadMs.toFixed(0)} ms, prefill ${m.prefill.toFixed(1)} tok/s, decode ${m.decode.toFixed(1)} tok/s (request ${(m.requestMs / 1000).toFixed(1)} s)`);
      }
    }
    for (const backend of BACKENDS) {
      const rs = runs[backend];
      results.push({
        model: name, backend, error: errors[backend], reason: rs[0]?.reason, info: rs[0]?.info,
        best: rs.length ? {
          loadMs: Math.min(...rs.map((x) => x.loadMs)),
          prefill: Math.max(...rs.map((x) => x.prefill)),
          decode: Math.max(...rs.map((x) => x.decode)),
        } : null,
      });
    }
  }

  const MB = (n) => (n / 1e6).toFixed(2);
  const f = (x, d = 1) => (x == null ? '-' : x.toFixed(d));
  console.log(`\n## pocketllm in headless Chromium\n`);
  console.log(`- Chromium ${version}, headless; WebGPU adapter: SwiftShader (WebGPU on the CPU, --use-webgpu-adapter=swiftshader)`);
  console.log(`- prompt ${opts.promptTokens} token ids, ${opts.genTokens} generated tokens (greedy, ignore_eos), best of ${opts.repeats}, backends alternating; load = createEngine with cache: false (download from a local server + upload)`);
  console.log(`- machine: ${os.cpus()[0]?.model?.trim() ?? '?'}, nproc ${os.availableParallelism?.() ?? os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(`- pkg/ as built at HEAD ${head} (copied before the run); pkg/generated/pocketllm_bg.wasm: ${MB(wasmSizes.raw)} MB raw, ${MB(wasmSizes.gzipDefault)} MB gzip (default level), ${MB(wasmSizes.gzip9)} MB gzip -9 (${wasmSizes.raw} / ${wasmSizes.gzipDefault} / ${wasmSizes.gzip9} bytes)`);
  console.log(`- tok/s are the engine's usage.prefill_tok_s / decode_tok_s (wasm clock: performance.now); decode counts the tokens after the first`);
  console.log('');
  console.log('| model | backend | load ms | prefill tok/s | decode tok/s |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of results) {
    if (r.best) console.log(`| ${r.model} | ${r.backend} | ${f(r.best.loadMs, 0)} | ${f(r.best.prefill)} | ${f(r.best.decode)} |`);
    else console.log(`| ${r.model} | ${r.backend} | failed: ${r.error} | | |`);
  }
  console.log('');
  for (const name of new Set(results.map((r) => r.model))) {
    // Each backend after the first against the first, as ratios (this machine is noisy).
    const [base, ...others] = BACKENDS.map((b) => [b, results.find((r) => r.model === name && r.backend === b)?.best]);
    for (const [b, other] of others) {
      if (base[1] && other) {
        console.log(`- ${name} ${b}/${base[0]}: load ${(other.loadMs / base[1].loadMs).toFixed(2)}x, prefill ${(other.prefill / base[1].prefill).toFixed(3)}x, decode ${(other.decode / base[1].decode).toFixed(3)}x`);
      }
    }
  }
  console.log('');
  for (const r of results) {
    if (r.reason) console.log(`- ${r.model} ${r.backend}: ${r.info.architecture}, ${r.info.parameter_count} parameters, vocab ${r.info.vocab_size}; backend reason: ${r.reason}`);
  }
  if (results.some((r) => r.error)) process.exitCode = 1;
} finally {
  await ctx?.close();
  await server.close();
  fs.rmSync(profile, { recursive: true, force: true });
  fs.rmSync(pkgSnapshot, { recursive: true, force: true });
}
