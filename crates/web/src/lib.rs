//! Slicelab's first page: a Service with N pods over three zones and the EndpointSlices the real
//! reconciler keeps for them at max M. Moving a slider reconciles incrementally from the slices that
//! exist, so what shows is what Kubernetes does: no repacking, slices filled in place, new ones made
//! only when needed.

use slicelab_core::controller::plan::eps;
use slicelab_core::controller::reconciler::{Reconciler, ReconcilerOptions, Verb};
use slicelab_core::controller::store::SliceStore;
use slicelab_core::controller::CONTROLLER_NAME;
use slicelab_core::fixtures;
use slicelab_core::k8s_openapi::api::core::v1::{Node, Pod, Service};
use slicelab_core::k8s_openapi::api::discovery::v1::EndpointSlice;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::HtmlInputElement;
use yew::prelude::*;

pub const MAX_PODS: u32 = 1000;
pub const MAX_PER_SLICE: usize = 1000;

/// The model behind the page: the cluster objects, the controller and its API store.
#[derive(Clone)]
pub struct Model {
    pub service: Service,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub next_pod: u32,
    pub max: usize,
    pub reconciler: Reconciler,
    pub store: SliceStore,
    /// What the last sync did: (verb, slice name or generateName, why).
    pub last_calls: Vec<(Verb, String, String)>,
}

impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        self.pods.len() == other.pods.len() && self.max == other.max && self.next_pod == other.next_pod
    }
}

/// What the sliders ask for.
pub enum Msg {
    SetPods(u32),
    SetMax(usize),
}

impl Model {
    pub fn new(pods: u32, max: usize) -> Self {
        let nodes = fixtures::nodes(3, 2);
        let mut m = Model {
            service: fixtures::service("web"),
            nodes,
            pods: Vec::new(),
            next_pod: 0,
            max: max.clamp(1, MAX_PER_SLICE),
            reconciler: Reconciler::new(ReconcilerOptions::default()),
            store: SliceStore::new(7),
            last_calls: Vec::new(),
        };
        m.reconciler.set_nodes(&m.nodes);
        m.set_pods(pods);
        m
    }

    /// Grow by new pods (new names, new IPs) or shrink by removing the newest, then sync.
    pub fn set_pods(&mut self, n: u32) {
        let n = n.min(MAX_PODS) as usize;
        if n < self.pods.len() {
            self.pods.truncate(n);
        } else {
            let more = (n - self.pods.len()) as u32;
            let new = fixtures::pods("web", self.next_pod, more, &self.nodes);
            self.next_pod += more;
            self.pods.extend(new);
        }
        self.sync();
    }

    pub fn set_max(&mut self, m: usize) {
        self.max = m.clamp(1, MAX_PER_SLICE);
        self.sync();
    }

    /// One controller sync from the current slices.
    pub fn sync(&mut self) {
        self.reconciler.options.max_endpoints_per_slice = self.max;
        let existing = self.store.slices_for_service(&self.service, CONTROLLER_NAME);
        let result = self.reconciler.reconcile(&self.service, &self.pods, &self.nodes, &existing);
        let applied = self.store.apply(&result.calls);
        let mut created = applied.created.into_iter();
        self.last_calls = result
            .calls
            .iter()
            .map(|c| {
                let name = match c.verb {
                    Verb::Create => created.next().unwrap_or_default(),
                    _ => c.slice.metadata.name.clone().unwrap_or_default(),
                };
                (c.verb, name, c.cause.describe())
            })
            .collect();
    }

    pub fn slices(&self) -> Vec<EndpointSlice> {
        self.store.slices_for_service(&self.service, CONTROLLER_NAME)
    }
}

impl Reducible for Model {
    type Action = Msg;
    fn reduce(self: Rc<Self>, action: Msg) -> Rc<Self> {
        let mut m = (*self).clone();
        match action {
            Msg::SetPods(n) => m.set_pods(n),
            Msg::SetMax(x) => m.set_max(x),
        }
        Rc::new(m)
    }
}

fn slider_value(e: &InputEvent) -> Option<u64> {
    e.target_dyn_into::<HtmlInputElement>().and_then(|i| i.value().parse::<u64>().ok())
}

#[derive(Properties, PartialEq)]
pub struct AppProps {
    #[prop_or(350)]
    pub pods: u32,
    #[prop_or(100)]
    pub max: usize,
}

#[component]
pub fn App(props: &AppProps) -> Html {
    let model = use_reducer(|| Model::new(props.pods, props.max));
    let on_pods = {
        let model = model.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(v) = slider_value(&e) {
                model.dispatch(Msg::SetPods(v.min(MAX_PODS as u64) as u32));
            }
        })
    };
    let on_max = {
        let model = model.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(v) = slider_value(&e) {
                model.dispatch(Msg::SetMax(v.clamp(1, MAX_PER_SLICE as u64) as usize));
            }
        })
    };
    let slices = model.slices();
    let endpoints: usize = slices.iter().map(|s| eps(s).len()).sum();
    let optimal = endpoints.div_ceil(model.max).max(1);
    let count = |v: Verb| model.last_calls.iter().filter(|c| c.0 == v).count();
    html! {
        <main class="page">
            <header>
                <h1>{"Slicelab"}</h1>
                <p class="lede">{"A Service selecting "}<b>{model.pods.len()}</b>{" Pods over three zones, and the EndpointSlices the real controller keeps for it. Move a slider: the controller reconciles from the slices that exist, so you see what Kubernetes does."}</p>
            </header>
            <section class="controls" aria-label="Knobs">
                <label>
                    <span>{"Pods "}<output data-testid="pods-value">{model.pods.len()}</output></span>
                    <input type="range" data-testid="pods" min="0" max={MAX_PODS.to_string()} value={model.pods.len().to_string()} oninput={on_pods} />
                </label>
                <label>
                    <span>{"Max endpoints per slice "}<output data-testid="max-value">{model.max}</output></span>
                    <input type="range" data-testid="max" min="1" max={MAX_PER_SLICE.to_string()} value={model.max.to_string()} oninput={on_max} />
                </label>
            </section>
            <section class="summary" aria-live="polite">
                <span data-testid="slice-count">{format!("{} slices", slices.len())}</span>
                <span>{format!("{endpoints} endpoints")}</span>
                <span title="ceil(endpoints / max): the controller does not repack to reach it">{format!("{optimal} would be optimal")}</span>
                <span class="calls">{format!("last sync: {} created, {} updated, {} deleted", count(Verb::Create), count(Verb::Update), count(Verb::Delete))}</span>
            </section>
            <ul class="slices">
                { for slices.iter().map(|s| slice_bar(s, model.max, &model.last_calls)) }
            </ul>
            { deleted_note(&model.last_calls) }
        </main>
    }
}

fn slice_bar(s: &EndpointSlice, max: usize, calls: &[(Verb, String, String)]) -> Html {
    let name = s.metadata.name.clone().unwrap_or_default();
    let n = eps(s).len();
    let ready = eps(s).iter().filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true)).count();
    let cap = max.max(n).max(1);
    let pct = |k: usize| format!("width: {:.3}%", 100.0 * k as f64 / cap as f64);
    let written = calls.iter().find(|c| c.1 == name);
    let class = match written.map(|c| c.0) {
        Some(Verb::Create) => "slice created",
        Some(Verb::Update) => "slice updated",
        _ => "slice",
    };
    html! {
        <li class={class} data-testid="slice" data-endpoints={n.to_string()}>
            <div class="slice-head">
                <code>{name}</code>
                <span>{format!("{n} / {max}")}</span>
                { for written.map(|c| html!{ <span class="why">{c.2.clone()}</span> }) }
            </div>
            <div class="bar" role="img" aria-label={format!("{n} of {max} endpoints, {ready} ready")}>
                <div class="fill ready" style={pct(ready)}></div>
                <div class="fill notready" style={pct(n - ready)}></div>
            </div>
        </li>
    }
}

fn deleted_note(calls: &[(Verb, String, String)]) -> Html {
    let deleted: Vec<String> = calls.iter().filter(|c| c.0 == Verb::Delete).map(|c| format!("{} ({})", c.1, c.2)).collect();
    if deleted.is_empty() {
        return html! {};
    }
    html! { <p class="deleted" data-testid="deleted">{"Deleted in the last sync: "}{deleted.join(", ")}</p> }
}

/// Mount the page into an element (the page itself and tests use this).
pub fn mount(root: web_sys::Element) -> yew::AppHandle<App> {
    yew::Renderer::<App>::with_root_and_props(root, AppProps { pods: 350, max: 100 }).render()
}

#[wasm_bindgen(start)]
pub fn start() {
    let root = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("app"));
    if let Some(root) = root {
        // Kept for the life of the page.
        std::mem::forget(mount(root));
    }
}
