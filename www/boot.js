// Loads the WebAssembly module. A file of its own, not an inline script, so the page runs under a
// strict Content-Security-Policy (script-src 'self' 'wasm-unsafe-eval').
import init from './slicelab-web.js';

init({ module_or_path: new URL('./slicelab-web_bg.wasm', import.meta.url) }).catch((e) => {
  const app = document.getElementById('app');
  if (app) app.textContent = 'Slicelab could not start: ' + e;
});
