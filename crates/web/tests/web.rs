//! The page's components in headless Firefox: the controls drive the model, a click on a Pod acts on
//! it, the URL round-trips, a broken link falls back cleanly, mount and destroy leave nothing behind,
//! and the simulation compiled to wasm gives the native trace hash.

use std::time::Duration;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use web_sys::{HtmlElement, HtmlInputElement};

wasm_bindgen_test_configure!(run_in_browser);

fn document() -> web_sys::Document {
    web_sys::window()
        .and_then(|w| w.document())
        .expect("a document")
}

async fn settle() {
    yew::platform::time::sleep(Duration::from_millis(60)).await;
}

/// Wait (up to 5 s) until `cond` holds: Yew may finish a long render in more than one task.
async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..250 {
        if cond() {
            return;
        }
        yew::platform::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

fn all(root: &web_sys::Element, sel: &str) -> Vec<web_sys::Element> {
    let list = root.query_selector_all(sel).expect("query");
    (0..list.length())
        .filter_map(|i| list.item(i))
        .filter_map(|n| n.dyn_into::<web_sys::Element>().ok())
        .collect()
}

fn one(root: &web_sys::Element, sel: &str) -> HtmlElement {
    root.query_selector(sel)
        .ok()
        .flatten()
        .and_then(|e| e.dyn_into().ok())
        .unwrap_or_else(|| panic!("{sel} is on the page"))
}

fn slice_sizes(root: &web_sys::Element) -> Vec<usize> {
    let mut v: Vec<usize> = all(root, "[data-testid=slice]")
        .iter()
        .filter_map(|e| e.get_attribute("data-endpoints"))
        .filter_map(|s| s.parse().ok())
        .collect();
    v.sort();
    v
}

fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        js_sys::Reflect::set(&o, &JsValue::from_str(k), v).expect("set");
    }
    o.into()
}

fn new_root() -> web_sys::Element {
    let root = document().create_element("div").expect("div");
    document()
        .body()
        .expect("body")
        .append_child(&root)
        .expect("append");
    root
}

#[wasm_bindgen_test]
async fn a_link_opens_at_its_time_and_destroy_leaves_nothing() {
    let root = new_root();
    let mut h = slicelab_web::mount(
        root.clone(),
        options(&[("query", "s=scale-0-350-0&t=30000".into())]),
    );
    settle().await;
    assert_eq!(h.time(), 30_000.0);
    // 350 Pods at max 100 made 100 + 100 + 100 + 50, and every Pod is drawn.
    assert_eq!(slice_sizes(&root), vec![50, 100, 100, 100]);
    assert_eq!(all(&root, "[data-testid=pod]").len(), 350);
    assert_eq!(all(&root, "[data-testid=endpoint]").len(), 350);
    assert_eq!(all(&root, "[data-testid=node]").len(), 9);
    h.destroy();
    settle().await;
    assert_eq!(
        root.child_element_count(),
        0,
        "destroy leaves nothing behind"
    );
    // A destroyed handle ignores calls.
    h.play();
    h.seek(5.0);
    root.remove();
}

#[wasm_bindgen_test]
async fn the_controls_drive_the_model() {
    let root = new_root();
    let mut h = slicelab_web::mount(
        root.clone(),
        options(&[("scenario", "scale-0-350-0".into())]),
    );
    settle().await;
    assert_eq!(h.time(), 0.0);
    one(&root, "[data-testid=step-forward]").click();
    settle().await;
    let t1 = h.time();
    assert!(t1 > 0.0, "a step forward moves to the next change");
    one(&root, "[data-testid=step-back]").click();
    settle().await;
    assert!(h.time() < t1, "a step back returns");
    // The scrub bar seeks.
    let scrub: HtmlInputElement = one(&root, "[data-testid=timeline]")
        .dyn_into()
        .expect("input");
    // A drag sends many inputs at once: the page seeks to where the bar is, once.
    for v in ["5000", "12000", "20000"] {
        scrub.set_value(v);
        scrub
            .dispatch_event(&web_sys::InputEvent::new("input").expect("event"))
            .expect("dispatch");
    }
    settle().await;
    assert_eq!(h.time(), 20_000.0);
    assert!(one(&root, "[data-testid=clock]")
        .text_content()
        .unwrap_or_default()
        .starts_with("20"));
    // Play runs the clock, pause stops it.
    one(&root, "[data-testid=play]").click();
    yew::platform::time::sleep(Duration::from_millis(400)).await;
    assert!(h.is_playing());
    one(&root, "[data-testid=play]").click();
    settle().await;
    let t2 = h.time();
    assert!(!h.is_playing() && t2 > 20_000.0, "played to {t2}");
    yew::platform::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.time(), t2, "paused");
    // The handle seeks back, and the view follows: at 1 s no Pod exists yet.
    h.seek(1000.0);
    settle().await;
    assert_eq!(all(&root, "[data-testid=pod]").len(), 0);
    // Keys: `?` opens the shortcuts, Escape closes them.
    let app = one(&root, "[data-testid=app]");
    let key = |k: &str| {
        let init = web_sys::KeyboardEventInit::new();
        init.set_key(k);
        init.set_bubbles(true);
        web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).expect("key")
    };
    app.dispatch_event(&key("?")).expect("dispatch");
    settle().await;
    assert!(root
        .query_selector("[data-testid=help-overlay]")
        .ok()
        .flatten()
        .is_some());
    app.dispatch_event(&key("Escape")).expect("dispatch");
    settle().await;
    assert!(root
        .query_selector("[data-testid=help-overlay]")
        .ok()
        .flatten()
        .is_none());
    h.destroy();
    root.remove();
}

#[wasm_bindgen_test]
async fn killing_a_pod_by_click_takes_its_endpoint_out() {
    let root = new_root();
    let mut h = slicelab_web::mount(
        root.clone(),
        options(&[("query", "s=scale-0-350-0&t=30000".into())]),
    );
    settle().await;
    let pod = all(&root, "[data-testid=pod][data-state=ready]")
        .into_iter()
        .next()
        .expect("a ready pod");
    let ip = pod.get_attribute("data-ip").expect("an IP");
    assert!(!all(
        &root,
        &format!("[data-testid=endpoint][data-ip='{ip}'].ready")
    )
    .is_empty());
    pod.dyn_into::<HtmlElement>().expect("el").click();
    settle().await;
    one(&root, "[data-testid=act-kill]").click();
    settle().await;
    h.seek(h.time() + 5_000.0);
    settle().await;
    until("the killed Pod's endpoint left its slice", || {
        all(&root, &format!("[data-testid=endpoint][data-ip='{ip}']")).is_empty()
    })
    .await;
    until("its replacement took a place", || {
        slice_sizes(&root).iter().sum::<usize>() == 350
    })
    .await;
    h.destroy();
    root.remove();
}

#[wasm_bindgen_test]
async fn the_url_round_trips_and_a_broken_one_falls_back() {
    use slicelab_core::sim::share::Shared;
    let w = web_sys::window().expect("window");
    let original = w.location().href().expect("href");
    let query = "s=dual-stack&seed=3&max=20&a=%5B%5B2000%2C%7B%22type%22%3A%22scale%22%2C%22workload%22%3A%22web%22%2C%22replicas%22%3A30%7D%5D%5D";
    let root = new_root();
    let mut h = slicelab_web::mount(
        root.clone(),
        options(&[("query", query.into()), ("url", true.into())]),
    );
    settle().await;
    h.seek(12_000.0);
    settle().await;
    let written = w.location().search().expect("search");
    let back = Shared::parse(&written).expect("the page writes a valid link");
    let mut expect = Shared::parse(query).expect("valid");
    expect.t = 12_000;
    assert_eq!(back, expect);
    // The dual-stack knob and the action are live: IPv4 and IPv6 slices of at most 20, 30 Pods.
    until("IPv6 slices show", || {
        all(&root, "[data-testid=slice][data-family=IPv6]").len() >= 2
    })
    .await;
    assert!(slice_sizes(&root).iter().all(|&n| n <= 20));
    h.destroy();
    w.history()
        .expect("history")
        .replace_state_with_url(&JsValue::NULL, "", Some(&original))
        .expect("restore");
    // A hostile link: a message, and the default scenario, never a blank page.
    let root = new_root();
    let mut h = slicelab_web::mount(
        root.clone(),
        options(&[("query", "s=%FF&t=abc&a=%7B".into())]),
    );
    settle().await;
    let msg = one(&root, "[data-testid=error]")
        .text_content()
        .unwrap_or_default();
    assert!(msg.contains("could not be opened"), "{msg}");
    assert_eq!(h.time(), 0.0);
    assert!(root
        .query_selector("[data-testid=timeline]")
        .ok()
        .flatten()
        .is_some());
    h.destroy();
    root.remove();
}

#[wasm_bindgen_test]
async fn pasted_objects_go_through_the_controllers_and_bad_ones_get_a_message() {
    let root = new_root();
    let mut h = slicelab_web::mount(
        root.clone(),
        options(&[("scenario", "scale-0-350-0".into())]),
    );
    settle().await;
    one(&root, "[data-testid=panel-paste]").click();
    settle().await;
    one(&root, "[data-testid=paste-run]").click();
    until("the example's slice shows", || {
        all(&root, "[data-testid=paste-slice]").len() == 1
    })
    .await;
    let yaml = one(&root, "[data-testid=paste-slice]")
        .text_content()
        .unwrap_or_default();
    assert!(
        yaml.contains("kind: EndpointSlice") && yaml.contains("10.244.2.9"),
        "{yaml}"
    );
    // Garbage: one clear message, the simulation untouched.
    let t = h.time();
    let area: web_sys::HtmlTextAreaElement = one(&root, "[data-testid=paste-input]")
        .dyn_into()
        .expect("textarea");
    area.set_value("kind: Service\nspec: [");
    area.dispatch_event(&web_sys::InputEvent::new("input").expect("event"))
        .expect("dispatch");
    one(&root, "[data-testid=paste-run]").click();
    until("the message shows", || {
        root.query_selector("[data-testid=paste-error]")
            .ok()
            .flatten()
            .is_some()
    })
    .await;
    assert!(all(&root, "[data-testid=paste-slice]").is_empty());
    assert_eq!(h.time(), t);
    h.destroy();
    root.remove();
}

#[wasm_bindgen_test]
fn the_simulation_in_wasm_gives_the_native_trace_hash() {
    use slicelab_core::sim::scenario::Scenario;
    use slicelab_core::sim::Sim;
    let mut sc = Scenario::by_id("scale-0-350-0").expect("built in");
    sc.seed = 7;
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(180_000);
    let here = format!("{:016x}", sim.trace_hash());
    let native = option_env!("SLICELAB_NATIVE_TRACE_HASH").unwrap_or("");
    assert!(
        !native.is_empty(),
        "run through `cargo xtask test`, which passes the native hash in"
    );
    assert_eq!(here, native, "wasm and native runs differ");
}
