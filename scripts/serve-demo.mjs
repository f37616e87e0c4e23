#!/usr/bin/env node
// Serves the demo site on 127.0.0.1: www/ at /, the npm package pkg/ at /pkg/ (www/index.html's
// import map points `pocketllm` at ../pkg/index.js, which is /pkg/index.js here). Node only, no
// dependencies. Sends COOP/COEP (cross-origin isolation, as a page that may use wasm threads
// must), the right MIME types (application/wasm for streaming compilation), and an ETag with
// `Cache-Control: no-cache`, so the service worker's and the browser's revalidations are 304s.
//
//   scripts/build-wasm.sh && node scripts/serve-demo.mjs [--port 8080] [--host 127.0.0.1]
//
// As a module: `serveDemo({ port: 0, extraRoots: { '/fixtures/': dir } })` resolves to
// { url, requests, close() } (the browser tests serve fixture models through extraRoots).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

/** The file a URL path names under one of the roots (longest prefix first), or null. */
function fileFor(roots, pathname) {
  let rel;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  const prefix = Object.keys(roots)
    .sort((a, b) => b.length - a.length)
    .find((p) => rel.startsWith(p));
  if (!prefix) return null;
  const root = path.resolve(roots[prefix]);
  let file = path.resolve(root, '.' + path.posix.normalize('/' + rel.slice(prefix.length)));
  if (file !== root && !file.startsWith(root + path.sep)) return null;
  try {
    if (fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    return fs.statSync(file).isFile() ? file : null;
  } catch {
    return null;
  }
}

export function serveDemo({ port = 8080, host = '127.0.0.1', extraRoots = {} } = {}) {
  const roots = { ...extraRoots, '/pkg/': path.join(repo, 'pkg'), '/': path.join(repo, 'www') };
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    requests.push(url.pathname);
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'X-Content-Type-Options': 'nosniff',
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, Allow: 'GET, HEAD' }).end();
      return;
    }
    const file = fileFor(roots, url.pathname);
    if (!file) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    const stat = fs.statSync(file);
    const etag = `W/"${stat.size.toString(36)}-${Math.floor(stat.mtimeMs).toString(36)}"`;
    Object.assign(headers, { ETag: etag, 'Last-Modified': stat.mtime.toUTCString(), 'Cache-Control': 'no-cache' });
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers).end();
      return;
    }
    res.writeHead(200, {
      ...headers,
      'Content-Type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': stat.size,
    });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: bound } = server.address();
      let closing = null;
      resolve({
        url: `http://${host}:${bound}`,
        requests,
        server,
        close: () =>
          (closing ??= new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          })),
      });
    });
  });
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (!fs.existsSync(path.join(repo, 'pkg/generated/pocketllm_bg.wasm'))) {
    console.error('warning: pkg/generated/ is missing: run scripts/build-wasm.sh first');
  }
  const port = Number(arg('port', 8080));
  serveDemo({ port, host: arg('host', '127.0.0.1') }).then(
    ({ url }) => console.log(`pocketllm demo: ${url}/  (Ctrl-C stops it)`),
    (e) => {
      console.error(`cannot serve on port ${port}: ${e.message}`);
      process.exit(1);
    },
  );
}
