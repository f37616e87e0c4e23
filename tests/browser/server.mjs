// A static server on 127.0.0.1 for the browser tests: the package under /pkg/, the fixture
// models under /fixtures/, this folder's page at /. Sends COOP/COEP like a page that will use
// threads must. Port 0: the OS picks a free one. `requests` lists the paths asked for (the cache
// tests check a second load asks for nothing); `?slow` streams a file in 64 KiB pieces 100 ms
// apart (a download that can be cut off midway).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm', '.json': 'application/json' };

export function serve(roots) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    requests.push(url.pathname);
    const prefix = Object.keys(roots).find((p) => url.pathname.startsWith(p));
    const file = prefix && path.join(roots[prefix], path.normalize(decodeURIComponent(url.pathname.slice(prefix.length))));
    if (!file || !file.startsWith(roots[prefix]) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': fs.statSync(file).size,
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cache-Control': 'no-store',
    });
    if (!url.searchParams.has('slow')) {
      fs.createReadStream(file).pipe(res);
      return;
    }
    const bytes = fs.readFileSync(file);
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed || at >= bytes.length) {
        clearInterval(timer);
        res.end();
        return;
      }
      res.write(bytes.subarray(at, at + 65536));
      at += 65536;
    }, 100);
    res.on('close', () => clearInterval(timer));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${server.address().port}`, requests, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) })),
  );
}
