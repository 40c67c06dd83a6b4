// End-to-end: the release build served on 127.0.0.1, driven in headless Chromium.
// Screenshots go to target/e2e/ for review.
import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = path.join(root, 'dist');
const shots = path.join(root, 'target', 'e2e');
fs.mkdirSync(shots, { recursive: true });
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  let file = path.normalize(path.join(dist, decodeURIComponent(url.pathname)));
  if (!file.startsWith(dist)) { res.writeHead(403); return res.end(); }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
  if (!fs.existsSync(file)) { res.writeHead(404); return res.end(); }
  res.writeHead(200, {
    'Content-Type': types[path.extname(file)] || 'application/octet-stream',
    'Content-Security-Policy': "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'",
  });
  fs.createReadStream(file).pipe(res);
});
await new Promise(r => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}/`;

let passed = 0, failed = 0;
const check = (name, ok, detail = '') => {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
};

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  const outside = [];
  page.on('pageerror', e => errors.push(String(e)));
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('request', r => { if (!r.url().startsWith(base)) outside.push(r.url()); });
  const t0 = Date.now();
  await page.goto(base);
  await page.waitForSelector('[data-testid=slice]', { timeout: 15000 });
  const firstRender = Date.now() - t0;
  console.log(`first render: ${firstRender} ms`);
  const sizes = async () => (await page.$$eval('[data-testid=slice]', els => els.map(e => +e.dataset.endpoints))).sort((a, b) => a - b);
  const slide = async (id, v) => {
    await page.$eval(`[data-testid=${id}]`, (el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', { bubbles: true })); }, v);
    await page.waitForTimeout(100);
  };
  check('350 pods at max 100 make 4 slices', JSON.stringify(await sizes()) === '[50,100,100,100]', JSON.stringify(await sizes()));
  await page.screenshot({ path: path.join(shots, 'first-page-350.png'), fullPage: true });
  await slide('pods', 1000);
  const s1000 = await sizes();
  check('1000 pods make 10 full slices', s1000.length === 10 && s1000.every(n => n === 100), JSON.stringify(s1000));
  await slide('max', 300);
  await slide('pods', 400);
  const s400 = await sizes();
  // Emptied slices are deleted, the others keep what they hold: nothing is repacked up to the new max.
  check('scaling down keeps slices in place (no repacking)', s400.reduce((a, b) => a + b, 0) === 400 && s400.every(n => n <= 100), JSON.stringify(s400));
  await page.screenshot({ path: path.join(shots, 'first-page-400-max-300.png'), fullPage: true });
  check('no errors on the page', errors.length === 0, JSON.stringify(errors));
  check('no request leaves the page', outside.length === 0, JSON.stringify(outside));
} finally {
  await browser.close();
  server.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
