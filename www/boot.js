// Loads the WebAssembly module and starts the page. A file of its own, not an inline script, so the
// page runs under a strict Content-Security-Policy (script-src 'self' 'wasm-unsafe-eval').
// It also publishes the JS API: `await Slicelab.ready; Slicelab.mount(element, options)`.
import init, { mount, startPage } from './slicelab-web.js';

const ready = init({ module_or_path: new URL('./slicelab-web_bg.wasm', import.meta.url) }).then(() => {
  window.Slicelab.mount = (element, options) => mount(element, options || {});
  return window.Slicelab;
});
window.Slicelab = { ready };

ready.then(() => {
  if (document.getElementById('app')) window.Slicelab.page = startPage();
}).catch((e) => {
  const app = document.getElementById('app');
  if (app) app.textContent = 'Slicelab could not start: ' + e;
});
