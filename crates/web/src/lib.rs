//! Slicelab's page: a Yew front end on the simulation in `slicelab-core`. The core does the work
//! (controllers, kube-proxy, the timeline, the views); this crate draws it and turns input into
//! actions. `mount` is also the JS API (`Slicelab.mount(element, options)`), so the page itself and
//! every embedded instance start the same way.

pub mod app;
pub mod charts;

use std::rc::Rc;

use app::{App, Msg, Props, Remote};
use wasm_bindgen::prelude::*;

/// A mounted instance: play, pause, seek and destroy it from JavaScript.
#[wasm_bindgen]
pub struct Handle {
    app: Option<yew::AppHandle<App>>,
    remote: Rc<Remote>,
}

#[wasm_bindgen]
impl Handle {
    pub fn play(&self) {
        self.send(Msg::Play);
    }

    pub fn pause(&self) {
        self.send(Msg::Pause);
    }

    /// Seek to `ms` milliseconds of virtual time.
    pub fn seek(&self, ms: f64) {
        if ms.is_finite() && ms >= 0.0 {
            self.send(Msg::SeekNow(ms as u64));
        }
    }

    /// The current virtual time in milliseconds.
    pub fn time(&self) -> f64 {
        self.remote.now.get() as f64
    }

    #[wasm_bindgen(js_name = isPlaying)]
    pub fn is_playing(&self) -> bool {
        self.remote.playing.get()
    }

    /// Unmount: the element is emptied, timers and listeners are gone.
    pub fn destroy(&mut self) {
        if let Some(app) = self.app.take() {
            app.destroy();
        }
    }
}

impl Handle {
    fn send(&self, m: Msg) {
        if let Some(s) = self.remote.scope.borrow().as_ref() {
            s.send_message(m);
        }
    }
}

fn opt_str(o: &JsValue, k: &str) -> Option<String> {
    js_sys::Reflect::get(o, &JsValue::from_str(k))
        .ok()
        .and_then(|v| {
            if let Some(s) = v.as_string() {
                Some(s)
            } else {
                v.as_f64().map(|f| format!("{f}"))
            }
        })
}

fn opt_bool(o: &JsValue, k: &str) -> bool {
    js_sys::Reflect::get(o, &JsValue::from_str(k))
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Options, all optional: `query` (a link's query string), or `scenario`, `seed`, `t`; `embed`
/// (compact layout), `autoplay`, `url` (keep the page URL in step; the main page only), `keys`
/// (listen to keys on the whole document).
pub fn props_from_options(options: &JsValue) -> Props {
    let mut query = opt_str(options, "query").unwrap_or_default();
    if query.is_empty() {
        let mut parts = Vec::new();
        for (k, q) in [("scenario", "s"), ("seed", "seed"), ("t", "t")] {
            if let Some(v) = opt_str(options, k) {
                parts.push(format!(
                    "{q}={}",
                    slicelab_core::sim::share::encode_component(&v)
                ));
            }
        }
        if opt_bool(options, "embed") {
            parts.push("embed=1".into());
        }
        query = parts.join("&");
    }
    Props {
        query,
        sync_url: opt_bool(options, "url"),
        global_keys: opt_bool(options, "keys"),
        autoplay: opt_bool(options, "autoplay"),
        remote: None,
    }
}

/// Mount an instance into `element`. Several may live on one page.
#[wasm_bindgen]
pub fn mount(element: web_sys::Element, options: JsValue) -> Handle {
    let mut props = props_from_options(&options);
    let remote = Rc::new(Remote::default());
    props.remote = Some(remote.clone());
    let app = yew::Renderer::<App>::with_root_and_props(element, props).render();
    Handle {
        app: Some(app),
        remote,
    }
}

/// The page's own start: the instance in `#app`, its state in the URL.
#[wasm_bindgen(js_name = startPage)]
pub fn start_page() -> Option<Handle> {
    let w = web_sys::window()?;
    let root = w.document()?.get_element_by_id("app")?;
    let query = w.location().search().unwrap_or_default();
    root.set_inner_html("");
    let remote = Rc::new(Remote::default());
    let props = Props {
        query,
        sync_url: true,
        global_keys: true,
        autoplay: false,
        remote: Some(remote.clone()),
    };
    let app = yew::Renderer::<App>::with_root_and_props(root, props).render();
    Some(Handle {
        app: Some(app),
        remote,
    })
}
