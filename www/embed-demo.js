// The documentation demo: one instance mounted with the JS API, driven by the buttons.
await window.Slicelab.ready;
const el = document.getElementById('mounted');
let handle = window.Slicelab.mount(el, { scenario: 'node-failure-3-zones', embed: true });
window.demoHandle = handle;
document.getElementById('demo-play').onclick = () => handle && handle.play();
document.getElementById('demo-pause').onclick = () => handle && handle.pause();
document.getElementById('demo-seek').onclick = () => handle && handle.seek(90000);
document.getElementById('demo-destroy').onclick = () => { if (handle) { handle.destroy(); handle = null; window.demoHandle = null; } };
