// The demo's service worker: keeps the app shell (the page, its script and style, and the
// pocketllm package files) so the demo opens offline after the first visit. Network first, so an
// online visit always gets the current files (the server answers revalidations with 304), the
// cache when the network fails. Models are not handled here: the package keeps downloaded models
// in its own Cache Storage cache; every other request goes to the network untouched.
const CACHE = 'pocketllm-demo-shell-v1';
const at = (p) => new URL(p, self.location).href;
const INDEX = at('./index.html');
const PAGES = new Set([at('./'), INDEX]);
const SHELL = [
  INDEX,
  at('./main.js'),
  at('./style.css'),
  at('../pkg/index.js'),
  at('../pkg/worker.js'),
  at('../pkg/generated/pocketllm.js'),
  at('../pkg/generated/pocketllm_bg.wasm'),
];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: 'no-cache' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith('pocketllm-demo-shell-') && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  const path = url.origin + url.pathname;
  // The page under any query (?model=...) is the one cached index.html.
  const key = req.mode === 'navigate' && PAGES.has(path) ? INDEX : SHELL.includes(path) ? path : null;
  if (!key) return;
  event.respondWith(
    fetch(req).then(
      (res) => {
        if (res.ok) event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key, res.clone())));
        return res;
      },
      async (err) => (await caches.match(key, { cacheName: CACHE })) ?? Promise.reject(err),
    ),
  );
});
