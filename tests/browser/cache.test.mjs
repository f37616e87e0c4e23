// Models loaded by URL are kept in Cache Storage: a second load reads them from there without a
// network request (offline), they can be listed and deleted, and neither a download that breaks
// off nor a file that fails to load leaves an entry. Needs ../shared/fixtures.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { fixtures, openTestPage } from './harness.mjs';
const MODEL = 'models/stories260k/stories260K-F32.gguf';
const haveFixtures = fs.existsSync(path.join(fixtures, MODEL));
if (!haveFixtures) console.log(`SKIPPED: cache tests need ${fixtures}`);
if (!haveFixtures && process.env.CI === 'true') test('fixtures are present', () => assert.fail(`${fixtures} is required under CI=true`));

describe('the model cache', { skip: haveFixtures ? false : `needs ${fixtures} (CI=true fails instead)` }, () => {
  let server, page;

  let inPage, close;

  before(async () => {
    ({ server, page, inPage, close } = await openTestPage({ logConsole: false }));
  });

  after(async () => {
    await close?.();
  });

  test('the second load comes from the cache with no request; list and delete', async () => {
    const url = `/fixtures/${MODEL}`;
    const load = async () =>
      inPage(async ({ createEngine }, url) => {
        const phases = new Set();
        const engine = await createEngine({ model: url, onProgress: (p) => phases.add(p.phase) });
        const res = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 24, temperature: 0 });
        await engine.unload();
        return { phases: [...phases], text: res.choices[0].text };
      }, url);
    const requests = () => server.requests.filter((p) => p.endsWith('.gguf')).length;

    const first = await load();
    assert.equal(first.error, undefined, JSON.stringify(first.error));
    assert.ok(first.phases.includes('download'), first.phases.join());
    assert.equal(requests(), 1);
    const listed = await inPage(({ listCachedModels }) => listCachedModels());
    const size = fs.statSync(path.join(fixtures, MODEL)).size;
    assert.deepEqual(listed.filter((m) => m.url.endsWith(MODEL)).map((m) => m.bytes), [size]);

    const second = await load();
    assert.equal(second.error, undefined, JSON.stringify(second.error));
    assert.ok(second.phases.includes('cache') && !second.phases.includes('download'), second.phases.join());
    assert.equal(second.text, first.text);
    assert.equal(requests(), 1, 'the cached load made no request');

    const deleted = await inPage(({ deleteCachedModel }, url) => deleteCachedModel(url), url);
    assert.equal(deleted, true);
    const after = await inPage(({ listCachedModels }) => listCachedModels());
    assert.equal(after.filter((m) => m.url.endsWith(MODEL)).length, 0);
    await load();
    assert.equal(requests(), 2, 'after delete the model is downloaded again');
  });

  test('a download cut off midway, a file that is no model, and cache: false leave no entry', async () => {
    const r = await inPage(async ({ createEngine, listCachedModels }, model) => {
      const codes = [];
      // Cut off: abort once the slow download has started.
      const ac = new AbortController();
      const p = createEngine({
        model: `/fixtures/${model}?slow`,
        signal: ac.signal,
        onProgress: (e) => e.phase === 'download' && e.loaded > 0 && ac.abort(),
      });
      await p.catch((e) => codes.push(e.code));
      // Not a GGUF.
      await createEngine({ model: '/page.html' }).catch((e) => codes.push(e.code));
      // Not cached on request.
      const engine = await createEngine({ model: `/fixtures/${model}?nocache`, cache: false });
      await engine.unload();
      return { codes, urls: (await listCachedModels()).map((m) => m.url) };
    }, MODEL);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.deepEqual(r.codes, ['aborted', 'bad_gguf']);
    assert.deepEqual(r.urls.filter((u) => u.includes('slow') || u.includes('page.html') || u.includes('nocache')), []);
  });
});
