// End-to-end: the release build served on 127.0.0.1, driven in headless Chromium (Debian's chromium,
// playwright-core). Load a scenario, play it, kill a Pod by clicking it, and check that its endpoint
// leaves the slice and that a node's kube-proxy view follows after its sync. Screenshots of every
// view go to target/e2e/ for review; frame times are measured and printed (figures, not asserts).
import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = path.join(root, 'dist');
const shots = path.join(root, 'target', 'e2e');
fs.mkdirSync(shots, { recursive: true });
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.svg': 'image/svg+xml' };

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  let file = path.normalize(path.join(dist, decodeURIComponent(url.pathname)));
  if (!file.startsWith(dist)) { res.writeHead(403); return res.end(); }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
  if (!fs.existsSync(file)) { res.writeHead(404); return res.end(); }
  res.writeHead(200, {
    'Content-Type': types[path.extname(file)] || 'application/octet-stream',
    'Content-Security-Policy': "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; frame-src 'self'",
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

// A full-page screenshot for review. Panels out of sight skip rendering (content-visibility), so
// they are made visible for the capture.
async function fullShot(page, name) {
  const style = await page.addStyleTag({ content: '.panel { content-visibility: visible !important; }' });
  await page.evaluate(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.screenshot({ path: path.join(shots, name), fullPage: true });
  await style.evaluate(e => e.remove());
}

// Frame times while playing: requestAnimationFrame intervals over `ms` of wall time.
async function frames(page, ms) {
  return page.evaluate(async (ms) => {
    const d = [];
    let last = performance.now();
    const end = last + ms;
    await new Promise(done => {
      const f = (t) => { d.push(t - last); last = t; if (t < end) requestAnimationFrame(f); else done(); };
      requestAnimationFrame(f);
    });
    d.sort((a, b) => a - b);
    const q = (p) => d[Math.min(d.length - 1, Math.floor(p * d.length))];
    return { frames: d.length, median: q(0.5), p95: q(0.95) };
  }, ms);
}

try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  const outside = [];
  page.on('pageerror', e => errors.push(String(e)));
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('request', r => { if (!r.url().startsWith(base)) outside.push(r.url()); });
  const time = () => page.evaluate(() => window.Slicelab.page.time());
  const seek = async (t) => { await page.evaluate((t) => window.Slicelab.page.seek(t), t); await page.waitForTimeout(40); };

  // First render of the default page.
  const t0 = Date.now();
  await page.goto(base);
  await page.waitForSelector('[data-testid=timeline]', { timeout: 20000 });
  console.log(`first render: ${Date.now() - t0} ms`);
  await fullShot(page, 'page-start.png');

  // Load a scenario at a time: 350 Pods at max 100 make 100 + 100 + 100 + 50.
  await page.goto(`${base}?s=scale-0-350-0&t=30000`);
  await page.waitForSelector('[data-testid=slice]', { timeout: 20000 });
  const sizes = async () => (await page.$$eval('[data-testid=slice]', els => els.map(e => +e.dataset.endpoints))).sort((a, b) => a - b);
  check('350 pods at max 100 make 4 slices', JSON.stringify(await sizes()) === '[50,100,100,100]', JSON.stringify(await sizes()));
  check('every pod is drawn', (await page.$$('[data-testid=pod]')).length === 350);

  // Play it.
  const before = await time();
  const charts = () => page.$$eval('canvas[data-testid^=chart-]', cs => cs.map(c => c.toDataURL()));
  const chartsBefore = await charts();
  await page.click('[data-testid=play]');
  await page.waitForTimeout(1200);
  const chartsPlaying = await charts();
  await page.click('[data-testid=play]');
  check('charts redraw while playing', chartsPlaying.some((c, i) => c !== chartsBefore[i]));
  const after = await time();
  check('play runs the clock', after > before + 500, `${before} -> ${after}`);
  check('the URL follows', (await page.evaluate(() => location.search)).includes('t='));

  // Kill a Pod by clicking it, in a small cluster where the node's view lists every endpoint.
  await page.goto(`${base}?s=node-failure-3-zones&t=30000`);
  await page.waitForSelector('[data-testid=proxy-endpoint]', { timeout: 20000 });
  const pod = await page.$('[data-testid=pod][data-state=ready]');
  const ip = await pod.getAttribute('data-ip');
  const podKey = await pod.getAttribute('data-pod');
  const inSlice = async () => (await page.$$(`[data-testid=endpoint][data-ip="${ip}"]`)).length > 0;
  const inProxy = async () => (await page.$$(`[data-testid=proxy-endpoint][data-endpoint^="${ip}:"]`)).length > 0;
  check('the pod is in a slice and in the node view', (await inSlice()) && (await inProxy()));
  await pod.click();
  await page.click('[data-testid=act-kill]');
  const killedAt = await time();
  let sliceGone = null, proxyGone = null, staleSeen = false;
  for (let t = killedAt; t < killedAt + 15000 && proxyGone === null; t += 100) {
    await seek(t);
    if (sliceGone === null && !(await inSlice())) sliceGone = t;
    if (sliceGone !== null) {
      if (await inProxy()) staleSeen = true;
      else proxyGone = t;
    }
  }
  await fullShot(page, 'after-kill.png');
  check('the killed pod\'s endpoint leaves the slice', sliceGone !== null, `killed at ${killedAt}`);
  check('the node view follows after its sync', proxyGone !== null && proxyGone >= sliceGone, `slice ${sliceGone}, proxy ${proxyGone}`);
  console.log(`slice updated ${sliceGone - killedAt} ms after the kill; the node followed ${proxyGone - sliceGone} ms later (stale view seen: ${staleSeen})`);
  // The failed Pod is removed (pod GC) and fades out where it was, then leaves.
  let fading = null;
  for (let t = proxyGone; t < killedAt + 90000 && fading === null; t += 250) {
    await seek(t);
    if ((await page.$$(`[data-testid=pod-gone][data-pod="${podKey}"]`)).length > 0) fading = t;
  }
  if (fading !== null) await seek(fading + 3000);
  const stillThere = (await page.$$(`[data-pod="${podKey}"]`)).length;
  check('a deleted pod fades out, then leaves', fading !== null && stillThere === 0, `fading at ${fading}, ${stillThere} left after`);

  // A node failure with a cut watch: the stale node shows it.
  await page.goto(`${base}?s=node-failure-3-zones&t=95000`);
  await page.waitForSelector('[data-testid=node]');
  await fullShot(page, 'node-failure.png');
  await page.click('text=The iptables rules this node wrote');
  await page.waitForSelector('[data-testid=rules]');
  check('the node\'s rules show', (await page.textContent('[data-testid=rules]')).includes('KUBE-SVC'));
  await (await page.$('[data-testid=view-proxy]')).screenshot({ path: path.join(shots, 'proxy-rules.png') });
  // A narrow embed, as in a documentation column.
  const narrow = await browser.newPage({ viewport: { width: 420, height: 900 } });
  await narrow.goto(`${base}?embed=1&s=dual-stack&t=30000`);
  await narrow.waitForSelector('[data-testid=slice]', { timeout: 20000 });
  await fullShot(narrow, 'embed-narrow.png');
  await narrow.close();

  // Every panel, the knobs and the objects views.
  await page.click('[data-testid=panel-knobs]');
  await page.waitForSelector('[data-testid=knob-max]');
  await fullShot(page, 'knobs.png');
  await page.selectOption('[data-testid=obj-kind]', 'endpointslices');
  await page.click('text=-o yaml');
  await fullShot(page, 'objects-yaml.png');
  await page.click('[data-testid=panel-paste]');
  await page.click('[data-testid=paste-run]');
  await page.waitForSelector('[data-testid=paste-slice]', { timeout: 10000 });
  check('pasted objects go through the controllers', (await page.$$('[data-testid=paste-slice]')).length === 1);
  await (await page.$('[data-testid=view-paste]')).screenshot({ path: path.join(shots, 'paste.png') });
  await page.keyboard.press('?');
  check('? opens the shortcuts', (await page.$('[data-testid=help-overlay]')) !== null);
  await page.screenshot({ path: path.join(shots, 'help.png') });
  await page.keyboard.press('Escape');
  await page.keyboard.press('d');
  await fullShot(page, 'dark.png');

  // A hostile link: a message and the default scenario.
  await page.goto(`${base}?s=%FF&t=abc&a=%7B`);
  await page.waitForSelector('[data-testid=error]', { timeout: 20000 });
  check('a broken link shows a message', (await page.textContent('[data-testid=error]')).includes('could not be opened'));

  // The embed demo: an iframe and a mounted instance on one page.
  await page.goto(`${base}embed-demo.html`);
  await page.waitForSelector('[data-testid=embed-mounted] [data-testid=timeline]', { timeout: 20000 });
  const frame = page.frameLocator('[data-testid=embed-iframe]');
  await frame.locator('[data-testid=slice]').first().waitFor({ timeout: 20000 });
  check('the iframe instance runs', (await frame.locator('[data-testid=slice]').count()) > 0);
  await page.click('[data-testid=demo-seek]');
  await page.waitForTimeout(100);
  check('the mount handle seeks', (await page.evaluate(() => window.demoHandle.time())) === 90000);
  await fullShot(page, 'embed-demo.png');
  await page.click('[data-testid=demo-destroy]');
  await page.waitForTimeout(100);
  check('destroy empties the element', (await page.$$eval('[data-testid=embed-mounted] *', e => e.length)) === 0);

  // Frame times while playing, at 1,000 and 10,000 Pods: figures for the notes, not pass or fail.
  for (const [label, q] of [['1000 pods', 'rolling-update-250&replicas=1000&t=60000'], ['10000 pods', 'rolling-update-250&replicas=10000&zones=3&npz=20&t=60000']]) {
    try {
      await page.goto(`${base}?s=${q}`);
      await page.waitForSelector('[data-testid=node]', { timeout: 120000 });
      await page.click('[data-testid=play]');
      const f = await frames(page, 3000);
      await page.click('[data-testid=play]');
      const pods = (await page.$$('[data-testid=pod]')).length;
      const mixes = (await page.$$('[data-testid=node-mix]')).length;
      console.log(`frames while playing, ${label} (${mixes ? `${mixes} nodes drawn as state mixes` : `${pods} pods drawn`}): median ${f.median.toFixed(1)} ms, p95 ${f.p95.toFixed(1)} ms over ${f.frames} frames`);
      if (mixes) {
        // A long seek (here 1.5 minutes forward, past all the run computed so far, so the replay is
        // long however dense the snapshots are) is spread over frames with its progress shown: the
        // page keeps drawing frames while it replays, then lands where the bar was put.
        const counting = page.evaluate(() => new Promise(done => {
          let n = 0, seen = false;
          const f = () => {
            const busy = !!document.querySelector('[data-testid=seeking]');
            if (busy) { n++; seen = true; }
            if (seen && !busy) done(n); else requestAnimationFrame(f);
          };
          requestAnimationFrame(f);
          setTimeout(() => done(n), 60000);
        }));
        await page.$eval('[data-testid=timeline]', el => { el.value = '150000'; el.dispatchEvent(new Event('input', { bubbles: true })); });
        const during = await counting;
        const clock = await page.textContent('[data-testid=clock]');
        check('a long seek keeps drawing frames and lands', during >= 5 && clock.startsWith('2m30.000s'), `${during} frames while seeking; ${clock}`);
      }
    } catch (e) {
      console.log(`frames while playing, ${label}: not measured (${String(e).split('\n')[0]})`);
    }
  }

  check('no errors on the page', errors.length === 0, JSON.stringify(errors.slice(0, 5)));
  check('no request leaves the page', outside.length === 0, JSON.stringify(outside));
} finally {
  await browser.close();
  server.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
