// Where a playing page spends its time: `node profile.mjs URL [CSS]` (from tests/e2e, the site served
// on 127.0.0.1) plays the page for 5 s in headless Chromium and prints frame times (median, 95th
// percentile), the browser's own work ("(program)": style, layout, paint) and the JavaScript and
// WebAssembly functions by self and inclusive time. Extra CSS can be injected to try a change.
// Function names show when the wasm keeps its name section (a build without wasm-opt's stripping).
// SHORT=1 prints the first line only.
import { chromium } from 'playwright-core';
const url = process.argv[2];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
await page.goto(url);
await page.waitForSelector('[data-testid=node]', { timeout: 120000 });
if (process.argv[3]) await page.addStyleTag({ content: process.argv[3] });
const cdp = await page.context().newCDPSession(page);
await cdp.send('Profiler.enable');
await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
await page.click('[data-testid=play]');
await page.waitForTimeout(300);
await cdp.send('Profiler.start');
const fr = await page.evaluate(async (ms) => {
  const d = []; let last = performance.now(); const end = last + ms;
  await new Promise(done => { const f = (t) => { d.push(t - last); last = t; if (t < end) requestAnimationFrame(f); else done(); }; requestAnimationFrame(f); });
  d.sort((a, b) => a - b); const q = (p) => d[Math.min(d.length - 1, Math.floor(p * d.length))];
  return { n: d.length, median: q(0.5).toFixed(1), p95: q(0.95).toFixed(1), max: d[d.length-1].toFixed(0) };
}, 5000);
const { profile } = await cdp.send('Profiler.stop');
const byId = new Map(profile.nodes.map(n => [n.id, n]));
const self = new Map();
const dt = profile.timeDeltas; let total = 0;
profile.samples.forEach((id, i) => { const n = byId.get(id); const k = n.callFrame.functionName || '(' + n.callFrame.url.split('/').pop() + ')'; self.set(k, (self.get(k) || 0) + dt[i] / 1000); total += dt[i] / 1000; });
// inclusive: walk parents
const parent = new Map(); for (const n of profile.nodes) for (const c of (n.children || [])) parent.set(c, n.id);
const incl = new Map();
profile.samples.forEach((id, i) => { const seen = new Set(); let cur = id; while (cur !== undefined) { const n = byId.get(cur); const k = n.callFrame.functionName; if (k && !seen.has(k)) { seen.add(k); incl.set(k, (incl.get(k) || 0) + dt[i] / 1000); } cur = parent.get(cur); } });
console.log('total sampled ms', total.toFixed(0), 'program', (self.get('(program)')||0).toFixed(0), 'idle', (self.get('(idle)')||0).toFixed(0), 'frames', JSON.stringify(fr)); if (process.env.SHORT) { await browser.close(); process.exit(0); }
console.log('--- self'); for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(v.toFixed(0).padStart(6), k.slice(0, 150));
console.log('--- inclusive'); for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 120)) console.log(v.toFixed(0).padStart(6), k.slice(0, 150));
await browser.close();
