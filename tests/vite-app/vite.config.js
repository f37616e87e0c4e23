// Vite config for an app using pocketllm. Why each line:
import { defineConfig, searchForWorkspaceRoot } from 'vite';

export default defineConfig({
  // main.js imports 'pocketllm/worker.js?worker&url': Vite bundles the package's worker (with the
  // wasm-bindgen glue it imports and the .wasm that glue fetches by `new URL(..., import.meta.url)`)
  // and main.js hands that URL to createEngine({ workerUrl }). The package starts its worker with
  // { type: 'module' }, so bundle it as an ES module ('iife', Vite's default, happens to run too,
  // but cannot code-split and rewrites import.meta.url).
  worker: { format: 'es' },
  // Dev server only: pre-bundling would move index.js into node_modules/.vite/deps, away from the
  // files it finds by `new URL('./worker.js', import.meta.url)`.
  optimizeDeps: { exclude: ['pocketllm'] },
  // Dev server only: the package is a link to ../../pkg, outside this folder, and the dev server
  // refuses to serve files from there (the worker's fetch of the .wasm got 403) unless allowed.
  server: { fs: { allow: [searchForWorkspaceRoot(process.cwd()), '../../pkg'] } },
});
