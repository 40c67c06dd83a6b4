//! The first page in headless Firefox: the sliders drive the real reconciler, incrementally.

use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{HtmlInputElement, InputEvent};

wasm_bindgen_test_configure!(run_in_browser);

fn document() -> web_sys::Document {
    web_sys::window().and_then(|w| w.document()).expect("a document")
}

fn count(root: &web_sys::Element, sel: &str) -> u32 {
    root.query_selector_all(sel).map(|l| l.length()).unwrap_or(0)
}

fn endpoints(root: &web_sys::Element) -> Vec<usize> {
    let list = root.query_selector_all("[data-testid=slice]").expect("query");
    let mut v: Vec<usize> = (0..list.length())
        .filter_map(|i| list.item(i))
        .filter_map(|n| n.dyn_into::<web_sys::Element>().ok())
        .filter_map(|e| e.get_attribute("data-endpoints"))
        .filter_map(|s| s.parse().ok())
        .collect();
    v.sort();
    v
}

async fn slide(root: &web_sys::Element, testid: &str, value: u32) {
    let input: HtmlInputElement = root
        .query_selector(&format!("[data-testid={testid}]"))
        .ok()
        .flatten()
        .and_then(|e| e.dyn_into().ok())
        .expect("the slider exists");
    input.set_value(&value.to_string());
    let ev = InputEvent::new("input").expect("an input event");
    input.dispatch_event(&ev).expect("dispatch");
    yew::platform::time::sleep(Duration::from_millis(30)).await;
}

#[wasm_bindgen_test]
async fn sliders_drive_the_real_reconciler() {
    let root = document().create_element("div").expect("div");
    document().body().expect("body").append_child(&root).expect("append");
    let app = slicelab_web::mount(root.clone());
    yew::platform::time::sleep(Duration::from_millis(30)).await;

    // 350 pods at max 100: 100 + 100 + 100 + 50.
    assert_eq!(count(&root, "[data-testid=slice]"), 4);
    assert_eq!(endpoints(&root), vec![50, 100, 100, 100]);

    // Down to 120 pods: slices are emptied in place, nothing is repacked.
    slide(&root, "pods", 120).await;
    assert_eq!(endpoints(&root).iter().sum::<usize>(), 120);
    assert!(count(&root, "[data-testid=slice]") >= 2);

    // Back to 0: one empty placeholder slice.
    slide(&root, "pods", 0).await;
    assert_eq!(endpoints(&root), vec![0]);

    // 47 pods at max 10 from scratch-like state: the placeholder is recycled, 5 slices.
    slide(&root, "max", 10).await;
    slide(&root, "pods", 47).await;
    assert_eq!(endpoints(&root), vec![7, 10, 10, 10, 10]);

    // Lowering max does not split existing slices (the controller never rebalances)...
    slide(&root, "max", 5).await;
    assert_eq!(endpoints(&root), vec![7, 10, 10, 10, 10]);
    // ...but new endpoints go into new slices of the new max.
    slide(&root, "pods", 52).await;
    assert_eq!(endpoints(&root).iter().sum::<usize>(), 52);
    assert!(endpoints(&root).iter().filter(|&&n| n <= 5).count() >= 1);

    app.destroy();
    yew::platform::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(count(&root, "[data-testid=slice]"), 0, "destroy leaves nothing behind");
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
    assert!(!native.is_empty(), "run through `cargo xtask test`, which passes the native hash in");
    assert_eq!(here, native, "wasm and native runs differ");
}
