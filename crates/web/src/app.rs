//! The page: one Yew component that owns a timeline of the simulation and draws its views. The
//! simulation lives in the core; this file turns clicks and keys into actions and seeks, and the
//! core's views into HTML.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use slicelab_core::sim::api::Kind;
use slicelab_core::sim::scenario::Scenario;
use slicelab_core::sim::share::{Knobs, Shared, DEFAULT_SCENARIO};
use slicelab_core::sim::timeline::Timeline;
use slicelab_core::sim::traffic::ConnOutcome;
use slicelab_core::sim::view::{
    kubectl, NodeView, PodState, PodView, ProxyView, ServiceView, SliceView,
};
use slicelab_core::sim::{fmt_ms, Action};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement, KeyboardEvent};
use yew::prelude::*;

use crate::charts;

/// Virtual milliseconds per real millisecond at the ends of the speed control (log scale).
pub const SPEED_MIN: f64 = 0.05;
pub const SPEED_MAX: f64 = 200.0;
/// A frame gap longer than this (a background tab) is not simulated.
const MAX_FRAME_GAP_MS: f64 = 250.0;
/// Wall milliseconds of simulation per frame while playing.
const SIM_BUDGET_MS: f64 = 8.0;
/// A seek whose replay is longer than this (virtual ms, scaled by thousands of Pods) is spread over
/// frames with its progress shown, instead of freezing the page until it lands.
const LONG_SEEK_MS: u64 = 100_000;
/// Wall milliseconds of replay per frame during a long seek.
const SEEK_BUDGET_MS: f64 = 30.0;
/// Pods or endpoints drawn one by one up to this many; past it, as proportions.
pub const DETAIL_LIMIT: usize = 2000;
/// Past this many Pods (or endpoints) drawn one by one, tokens change without animating (a deleted
/// Pod still fades out): hundreds of tokens animating at once cost more than a frame.
pub const ANIMATE_LIMIT: usize = 400;

/// A subtree that is rebuilt and diffed only when its stamp changes.
#[derive(Properties, Clone)]
pub struct MemoProps {
    pub stamp: u64,
    pub html: Html,
}

impl PartialEq for MemoProps {
    fn eq(&self, o: &Self) -> bool {
        self.stamp == o.stamp
    }
}

#[component]
pub fn Memo(p: &MemoProps) -> Html {
    p.html.clone()
}

/// One of many memoised parts (a node box, a slice bar), cached by `id` under its content's stamp.
fn keyed_memo(
    cache: &RefCell<std::collections::HashMap<String, (u64, Html)>>,
    id: String,
    stamp: u64,
    build: impl FnOnce() -> Html,
) -> Html {
    let mut c = cache.borrow_mut();
    let html = match c.get(&id) {
        Some((s, h)) if *s == stamp => h.clone(),
        _ => {
            let h = build();
            c.insert(id.clone(), (stamp, h.clone()));
            h
        }
    };
    html! { <Memo key={id} {stamp} {html} /> }
}

/// A stamp of everything a memoised panel depends on.
fn stamp_of(parts: impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Panel {
    Cluster,
    Slices,
    Proxy,
    Log,
    Objects,
    Charts,
    Knobs,
    Paste,
}

impl Panel {
    pub const ALL: [Panel; 8] = [
        Panel::Cluster,
        Panel::Slices,
        Panel::Proxy,
        Panel::Log,
        Panel::Objects,
        Panel::Charts,
        Panel::Knobs,
        Panel::Paste,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Panel::Cluster => "Cluster",
            Panel::Slices => "Service and slices",
            Panel::Proxy => "kube-proxy",
            Panel::Log => "Why-log",
            Panel::Objects => "Objects",
            Panel::Charts => "Charts",
            Panel::Knobs => "Knobs",
            Panel::Paste => "Your objects",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Panel::Cluster => "cluster",
            Panel::Slices => "slices",
            Panel::Proxy => "proxy",
            Panel::Log => "log",
            Panel::Objects => "objects",
            Panel::Charts => "charts",
            Panel::Knobs => "knobs",
            Panel::Paste => "paste",
        }
    }
}

/// What a click on a Pod or a node opens.
#[derive(Clone, Debug, PartialEq, Hash)]
pub enum Target {
    Pod(String),
    Node(String),
}

/// A change from the knobs panel.
#[derive(Clone, Debug, PartialEq)]
pub enum Knob {
    Scenario(String),
    Seed(u64),
    Replicas(u32),
    MaxPerSlice(usize),
    Rate(f64),
    Zones(u32),
    NodesPerZone(u32),
    DualStack(bool),
    ProxyMode(String),
    TrafficDistribution(String),
    TopologyAuto(bool),
    InternalPolicy(String),
    ExternalPolicy(String),
    SessionAffinity(bool),
}

pub enum Msg {
    Frame(f64),
    Play,
    Pause,
    TogglePlay,
    StepForward,
    StepBack,
    Seek(u64),
    /// Seek and land before returning (the JS handle's `seek`): never spread over frames.
    SeekNow(u64),
    /// The scrub bar moved: seek on the next frame to where it is then (drags send many of these).
    Scrub(u64),
    SeekBy(i64),
    Speed(f64),
    SpeedBy(f64),
    Restart,
    Open(Option<Target>),
    Act(Action),
    Knob(Knob),
    SelectService(String),
    SelectNode(String),
    TogglePanel(Panel),
    Help(bool),
    Theme,
    ObjectsKind(Kind),
    ObjectsMode(ObjMode),
    ObjectsKey(String),
    ShowRules(bool),
    LogFilter(String),
    Key(KeyboardEvent),
    DismissError,
    PasteText(String),
    PasteRun,
    PasteExample,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjMode {
    Get,
    Describe,
    Yaml,
}

/// Commands from outside the component (the JS mount handle).
#[derive(Default)]
pub struct Remote {
    pub scope: RefCell<Option<yew::html::Scope<App>>>,
    pub now: std::cell::Cell<u64>,
    pub playing: std::cell::Cell<bool>,
}

#[derive(Properties, Clone)]
pub struct Props {
    /// The query string to start from (`?s=…&t=…`).
    #[prop_or_default]
    pub query: String,
    /// Keep the page URL in step with the state (the main page; not mounted instances).
    #[prop_or(false)]
    pub sync_url: bool,
    /// Listen to keys on the whole document (the main page).
    #[prop_or(false)]
    pub global_keys: bool,
    /// Start playing at once.
    #[prop_or(false)]
    pub autoplay: bool,
    #[prop_or_default]
    pub remote: Option<Rc<Remote>>,
}

impl PartialEq for Props {
    fn eq(&self, o: &Self) -> bool {
        self.query == o.query
            && self.sync_url == o.sync_url
            && self.global_keys == o.global_keys
            && self.autoplay == o.autoplay
    }
}

pub struct App {
    tl: Timeline,
    shared: Shared,
    playing: bool,
    speed: f64,
    last_frame: Option<f64>,
    raf: Option<(i32, Closure<dyn FnMut(f64)>)>,
    /// Where the scrub bar was dragged to, not yet sought.
    scrub_to: Option<u64>,
    /// A long seek under way: its target (the run steps toward it frame by frame).
    seeking: Option<u64>,
    keys: Option<Closure<dyn FnMut(KeyboardEvent)>>,
    open: Option<Target>,
    service: String,
    node: String,
    panels: Vec<Panel>,
    help: bool,
    dark: Option<bool>,
    error: Option<String>,
    obj_kind: Kind,
    obj_mode: ObjMode,
    obj_key: String,
    /// The text last shown per object, to highlight what changed.
    obj_seen: RefCell<BTreeMap<String, (String, Vec<bool>)>>,
    show_rules: bool,
    log_filter: String,
    end_ms: u64,
    last_url_write: f64,
    announce: String,
    charts_drawn: RefCell<(u64, f64, usize)>,
    /// While playing: the next chart is to be drawn at the start of the next frame.
    chart_due: Cell<bool>,
    chart_refs: charts::Refs,
    /// Wall milliseconds the last view took (renders are paced by it while playing).
    view_cost: std::cell::Cell<f64>,
    scenarios: Vec<(String, String)>,
    cluster_cache: RefCell<Option<(u64, Html)>>,
    /// Each node's box, by the content it shows: a write redraws only the nodes it touched.
    node_cache: RefCell<std::collections::HashMap<String, (u64, Html)>>,
    /// Each slice's bar, by the content it shows.
    slice_cache: RefCell<std::collections::HashMap<String, (u64, Html)>>,
    paste_text: String,
    paste_result: Option<Result<slicelab_core::paste::Report, String>>,
    slices_cache: RefCell<Option<(u64, Html)>>,
    /// Wall time of the last render, to pace renders while playing.
    last_render: f64,
}

fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

fn perf_now() -> f64 {
    window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// The default end of the scrub bar: past the scenario's last action.
fn default_end(sc: &Scenario, actions: &[slicelab_core::sim::scenario::TimedAction]) -> u64 {
    let last = sc
        .actions
        .iter()
        .chain(actions)
        .map(|a| a.at.0)
        .max()
        .unwrap_or(0);
    (last + 120_000).max(300_000)
}

impl App {
    /// Land a long seek now, if one is under way.
    fn finish_seek(&mut self) {
        if let Some(t) = self.seeking.take() {
            self.tl.seek(t);
        }
    }

    /// Seek to `t`: at once when the replay is short, else spread over frames (`seeking`).
    fn seek_to(&mut self, ctx: &Context<Self>, t: u64, spread: bool) {
        let t = t.min(slicelab_core::sim::share::MAX_TIME_MS);
        self.seeking = None;
        // The cluster's size: now, or as the scenario asks (a run at its start has no Pods yet).
        let asked: u64 = self
            .tl
            .scenario
            .world
            .workloads
            .iter()
            .map(|w| w.replicas as u64)
            .sum();
        let pods = (self.tl.current.api.pods().count() as u64)
            .max(asked)
            .max(1000);
        if spread && t.saturating_sub(self.tl.replay_from(t)) * (pods / 1000) > LONG_SEEK_MS {
            self.tl.rewind(t);
            self.seeking = Some(t);
            self.start_frames(ctx);
        } else {
            self.tl.seek(t);
        }
        self.end_ms = self.end_ms.max(t);
    }

    /// The chart `rendered` left for this frame, drawn before the frame changes the page.
    fn draw_due_chart(&self) {
        if !self.chart_due.replace(false) || !self.panels.contains(&Panel::Charts) {
            return;
        }
        let next = self.charts_drawn.borrow().2;
        charts::draw_one(&self.chart_refs, &self.tl.current, next);
        *self.charts_drawn.borrow_mut() = (self.now(), perf_now(), (next + 1) % charts::COUNT);
    }

    /// Build the timeline for a link; a bad link falls back to the default scenario with a message.
    fn build(shared: Shared) -> (Timeline, Shared, Option<String>) {
        match shared
            .scenario()
            .and_then(|sc| Timeline::new(sc, shared.actions.clone()))
        {
            Ok(tl) => (tl, shared, None),
            Err(e) => {
                let fallback = Shared {
                    scenario: DEFAULT_SCENARIO.into(),
                    embed: shared.embed,
                    ..Default::default()
                };
                let tl = Timeline::new(
                    fallback.scenario().expect("the default scenario builds"),
                    Vec::new(),
                )
                .expect("the default scenario builds");
                (
                    tl,
                    fallback,
                    Some(format!(
                        "This link could not be opened: {e}. Showing the default scenario instead."
                    )),
                )
            }
        }
    }

    /// The timeline a link opens, at its start, and the time the link asks for (0 for a bad link).
    fn from_query(query: &str) -> (Timeline, Shared, Option<String>, u64) {
        match Shared::parse(query) {
            Ok(s) => {
                let t = s.t;
                let (tl, s, err) = Self::build(s);
                let t = if err.is_none() { t } else { 0 };
                (tl, s, err, t)
            }
            Err(e) => {
                let (tl, s, _) = Self::build(Shared::default());
                (
                    tl,
                    s,
                    Some(format!(
                        "This link could not be opened: {e}. Showing the default scenario instead."
                    )),
                    0,
                )
            }
        }
    }

    pub fn now(&self) -> u64 {
        self.tl.now()
    }

    fn reset_selection(&mut self) {
        let sim = &self.tl.current;
        let keys = sim.service_keys();
        if !keys.contains(&self.service) {
            self.service = keys.first().cloned().unwrap_or_default();
        }
        if !sim.proxies.contains_key(&self.node) {
            self.node = sim.proxies.keys().next().cloned().unwrap_or_default();
        }
    }

    /// Rebuild from the current link state (a knob or the scenario changed), back at time `t`.
    fn rebuild(&mut self, ctx: &Context<Self>, t: u64) {
        let (tl, shared, err) = Self::build(self.shared.clone());
        let t = if err.is_none() { t } else { 0 };
        self.seeking = None;
        self.tl = tl;
        self.shared = shared;
        self.error = err;
        // Another world: stamps from the old one mean nothing here.
        *self.cluster_cache.borrow_mut() = None;
        self.node_cache.borrow_mut().clear();
        self.slice_cache.borrow_mut().clear();
        *self.slices_cache.borrow_mut() = None;
        self.end_ms = default_end(&self.tl.scenario, &self.shared.actions).max(t);
        self.seek_to(ctx, t, true);
        self.reset_selection();
    }

    fn act(&mut self, action: Action) {
        self.open = None;
        if self.shared.actions.len() >= slicelab_core::sim::share::MAX_ACTIONS {
            // Dropping an old action would change the past; refuse instead.
            self.error = Some(format!(
                "This run already holds {} actions, the most a link can carry; restart the scenario to act again.",
                slicelab_core::sim::share::MAX_ACTIONS
            ));
            return;
        }
        self.announce = format!("At {}: {}", fmt_ms(self.now()), action.describe());
        self.shared
            .actions
            .push(slicelab_core::sim::scenario::TimedAction {
                at: slicelab_core::sim::scenario::Millis(self.now()),
                action: action.clone(),
            });
        self.tl.act(action);
    }

    fn write_url(&mut self, ctx: &Context<Self>, force: bool) {
        if !ctx.props().sync_url {
            return;
        }
        let now = perf_now();
        if !force && now - self.last_url_write < 1000.0 {
            return;
        }
        self.last_url_write = now;
        self.shared.t = self.seeking.unwrap_or(self.now());
        let q = self.shared.to_query();
        if let Some(h) = window().and_then(|w| w.history().ok()) {
            let _ = h.replace_state_with_url(&JsValue::NULL, "", Some(&format!("?{q}")));
        }
    }

    fn start_frames(&mut self, ctx: &Context<Self>) {
        if self.raf.is_some() {
            return;
        }
        let link = ctx.link().clone();
        let cb = Closure::<dyn FnMut(f64)>::new(move |ts: f64| link.send_message(Msg::Frame(ts)));
        if let Some(id) =
            window().and_then(|w| w.request_animation_frame(cb.as_ref().unchecked_ref()).ok())
        {
            self.raf = Some((id, cb));
        }
    }

    fn stop_frames(&mut self) {
        if let Some((id, _)) = self.raf.take() {
            if let Some(w) = window() {
                let _ = w.cancel_animation_frame(id);
            }
        }
        self.last_frame = None;
        self.finish_seek();
        // A drag still waiting for its frame lands now.
        if let Some(t) = self.scrub_to.take() {
            self.tl.seek(t);
            self.end_ms = self.end_ms.max(t);
        }
    }

    fn set_playing(&mut self, ctx: &Context<Self>, on: bool) {
        self.playing = on;
        if let Some(r) = &ctx.props().remote {
            r.playing.set(on);
        }
        if on {
            if self.now() >= self.end_ms {
                self.end_ms = self.now() + 300_000;
            }
            self.start_frames(ctx);
        } else {
            self.stop_frames();
            self.write_url(ctx, true);
        }
    }

    fn step_forward(&mut self) {
        // To the next logged change (several internal events may come first).
        let before = self.tl.current.log.len();
        for _ in 0..100_000 {
            if self.tl.current.next_time().is_none() {
                break;
            }
            self.tl.step_forward();
            if self.tl.current.log.len() > before {
                break;
            }
        }
        self.end_ms = self.end_ms.max(self.now());
    }

    fn latest_announcement(&self) -> String {
        self.tl
            .current
            .log
            .iter()
            .rev()
            .take(200)
            .find(|e| e.actor != "traffic" && !e.actor.starts_with("kube-proxy"))
            .map(|e| format!("{} {}: {} ({})", fmt_ms(e.t), e.actor, e.what, e.cause))
            .unwrap_or_default()
    }

    fn on_key(&mut self, ctx: &Context<Self>, e: KeyboardEvent) -> bool {
        let target_is_field = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .map(|el| matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"))
            .unwrap_or(false);
        let key = e.key();
        if key == "Escape" {
            self.help = false;
            self.open = None;
            return true;
        }
        if target_is_field || e.ctrl_key() || e.meta_key() || e.alt_key() {
            return false;
        }
        let msg = match key.as_str() {
            " " | "k" => Msg::TogglePlay,
            "ArrowRight" | "l" if e.shift_key() => Msg::SeekBy(10_000),
            "ArrowLeft" | "j" if e.shift_key() => Msg::SeekBy(-10_000),
            "ArrowRight" | "." => Msg::StepForward,
            "ArrowLeft" | "," => Msg::StepBack,
            "+" | "=" => Msg::SpeedBy(2.0),
            "-" | "_" => Msg::SpeedBy(0.5),
            "Home" | "0" => Msg::Restart,
            "?" => Msg::Help(!self.help),
            "d" => Msg::Theme,
            "1" => Msg::TogglePanel(Panel::Cluster),
            "2" => Msg::TogglePanel(Panel::Slices),
            "3" => Msg::TogglePanel(Panel::Proxy),
            "4" => Msg::TogglePanel(Panel::Log),
            "5" => Msg::TogglePanel(Panel::Objects),
            "6" => Msg::TogglePanel(Panel::Charts),
            "7" => Msg::TogglePanel(Panel::Knobs),
            "8" => Msg::TogglePanel(Panel::Paste),
            _ => return false,
        };
        e.prevent_default();
        Component::update(self, ctx, msg)
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = Props;

    fn create(ctx: &Context<Self>) -> Self {
        let (tl, shared, error, t) = Self::from_query(&ctx.props().query);
        let embed = shared.embed;
        let end_ms = default_end(&tl.scenario, &shared.actions).max(tl.now());
        let mut app = App {
            tl,
            shared,
            playing: false,
            speed: 1.0,
            last_frame: None,
            raf: None,
            scrub_to: None,
            seeking: None,
            keys: None,
            open: None,
            service: String::new(),
            node: String::new(),
            panels: if embed {
                vec![Panel::Cluster, Panel::Slices]
            } else {
                vec![
                    Panel::Cluster,
                    Panel::Slices,
                    Panel::Proxy,
                    Panel::Log,
                    Panel::Charts,
                    Panel::Objects,
                ]
            },
            help: false,
            dark: None,
            error,
            obj_kind: Kind::EndpointSlice,
            obj_mode: ObjMode::Get,
            obj_key: String::new(),
            obj_seen: RefCell::new(BTreeMap::new()),
            show_rules: false,
            log_filter: String::new(),
            end_ms,
            last_url_write: 0.0,
            announce: String::new(),
            charts_drawn: RefCell::new((u64::MAX, 0.0, 0)),
            chart_due: Cell::new(false),
            chart_refs: charts::Refs::default(),
            view_cost: std::cell::Cell::new(0.0),
            scenarios: Scenario::builtin()
                .into_iter()
                .map(|s| (s.id, s.title))
                .collect(),
            last_render: 0.0,
            cluster_cache: RefCell::new(None),
            node_cache: RefCell::new(Default::default()),
            slice_cache: RefCell::new(Default::default()),
            paste_text: slicelab_core::paste::EXAMPLE.to_string(),
            paste_result: None,
            slices_cache: RefCell::new(None),
        };
        // A link far into a large run opens at once and replays toward its time in view.
        app.seek_to(ctx, t, true);
        app.reset_selection();
        if let Some(r) = &ctx.props().remote {
            *r.scope.borrow_mut() = Some(ctx.link().clone());
            r.now.set(app.seeking.unwrap_or(app.now()));
        }
        if ctx.props().global_keys {
            let link = ctx.link().clone();
            let cb = Closure::<dyn FnMut(KeyboardEvent)>::new(move |e: KeyboardEvent| {
                link.send_message(Msg::Key(e))
            });
            if let Some(d) = window().and_then(|w| w.document()) {
                let _ = d.add_event_listener_with_callback("keydown", cb.as_ref().unchecked_ref());
            }
            app.keys = Some(cb);
        }
        if ctx.props().autoplay {
            app.set_playing(ctx, true);
        }
        app
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        if !matches!(
            msg,
            Msg::Frame(_) | Msg::Scrub(_) | Msg::Seek(_) | Msg::SeekNow(_)
        ) {
            // Anything else acts on the run where the seek was going: land it first.
            self.finish_seek();
        }
        let changed = match msg {
            Msg::Frame(ts) => {
                self.raf = None;
                self.draw_due_chart();
                let scrubbed = self.scrub_to.is_some();
                if let Some(t) = self.scrub_to.take() {
                    Component::update(self, ctx, Msg::Seek(t));
                    if !self.playing {
                        return true;
                    }
                    // Playing on from where the bar was dropped.
                    self.last_frame = Some(ts);
                }
                if let Some(t) = self.seeking {
                    // A long seek: replay toward it within the frame's budget, then land.
                    let a = perf_now();
                    while self.tl.current.next_time().is_some_and(|n| n <= t) {
                        self.tl.step_forward();
                        if perf_now() - a > SEEK_BUDGET_MS {
                            break;
                        }
                    }
                    if !self.tl.current.next_time().is_some_and(|n| n <= t) {
                        self.finish_seek();
                        self.write_url(ctx, true);
                        self.announce = format!("At {}", fmt_ms(t));
                        self.last_frame = Some(ts);
                    }
                    if self.seeking.is_some() || self.playing {
                        self.start_frames(ctx);
                    }
                    // The page shows the replay's progress a few times a second; the rest of the
                    // time goes to the replay.
                    if self.seeking.is_none() || ts - self.last_render >= 250.0 {
                        self.last_render = ts;
                        return true;
                    }
                    return false;
                }
                if !self.playing {
                    return false;
                }
                let dt = self
                    .last_frame
                    .map(|l| (ts - l).clamp(0.0, MAX_FRAME_GAP_MS))
                    .unwrap_or(0.0);
                self.last_frame = Some(ts);
                let target = self.now() + (dt * self.speed).round() as u64;
                let target = target.min(self.end_ms);
                let moved = target > self.now();
                if moved {
                    // Step events within a wall-time budget, so a large cluster slows the clock
                    // instead of the page.
                    let a = perf_now();
                    let mut done = true;
                    while self.tl.current.next_time().is_some_and(|n| n <= target) {
                        self.tl.step_forward();
                        if perf_now() - a > SIM_BUDGET_MS {
                            done = false;
                            break;
                        }
                    }
                    if done {
                        self.tl.seek(target);
                    }
                }
                if self.now() >= self.end_ms {
                    self.set_playing(ctx, false);
                    return true;
                }
                self.start_frames(ctx);
                self.write_url(ctx, false);
                // Large clusters: render less often than every frame, so frames stay short.
                let cost = self.view_cost.get();
                if scrubbed || (moved && ts - self.last_render >= (cost * 3.0).min(500.0)) {
                    self.last_render = ts;
                    true
                } else {
                    false
                }
            }
            Msg::Play => {
                self.set_playing(ctx, true);
                true
            }
            Msg::Pause => {
                self.set_playing(ctx, false);
                true
            }
            Msg::TogglePlay => {
                let on = !self.playing;
                self.set_playing(ctx, on);
                true
            }
            Msg::StepForward => {
                self.set_playing(ctx, false);
                self.step_forward();
                self.announce = self.latest_announcement();
                self.write_url(ctx, true);
                true
            }
            Msg::StepBack => {
                self.set_playing(ctx, false);
                self.tl.step_back();
                self.announce = self.latest_announcement();
                self.write_url(ctx, true);
                true
            }
            Msg::Seek(t) => {
                self.seek_to(ctx, t, true);
                self.write_url(ctx, !self.playing);
                true
            }
            Msg::SeekNow(t) => {
                self.seek_to(ctx, t, false);
                self.write_url(ctx, !self.playing);
                true
            }
            Msg::Scrub(t) => {
                self.scrub_to = Some(t);
                self.start_frames(ctx);
                false
            }
            Msg::SeekBy(d) => {
                let t = (self.now() as i64 + d).max(0) as u64;
                return Component::update(self, ctx, Msg::Seek(t));
            }
            Msg::Speed(s) => {
                self.speed = s.clamp(SPEED_MIN, SPEED_MAX);
                true
            }
            Msg::SpeedBy(f) => {
                self.speed = (self.speed * f).clamp(SPEED_MIN, SPEED_MAX);
                true
            }
            Msg::Restart => {
                self.tl.seek(0);
                self.write_url(ctx, true);
                true
            }
            Msg::Open(t) => {
                self.open = t;
                true
            }
            Msg::Act(a) => {
                if let Action::CutWatch { node }
                | Action::RestoreWatch { node }
                | Action::FailNode { node }
                | Action::DrainNode { node }
                | Action::RecoverNode { node } = &a
                {
                    self.node = node.clone();
                }
                self.act(a);
                self.write_url(ctx, true);
                true
            }
            Msg::Knob(k) => {
                let svc = self.service.clone();
                let mut patch = Knobs::default();
                match k {
                    Knob::Scenario(id) => {
                        self.shared = Shared {
                            scenario: id,
                            embed: self.shared.embed,
                            ..Default::default()
                        };
                        self.rebuild(ctx, 0);
                    }
                    Knob::Seed(s) => {
                        self.shared.seed = Some(s);
                        let t = self.now();
                        self.rebuild(ctx, t);
                    }
                    Knob::Zones(z) => {
                        self.shared.knobs.zones = Some(z);
                        let t = self.now();
                        self.rebuild(ctx, t);
                    }
                    Knob::NodesPerZone(n) => {
                        self.shared.knobs.nodes_per_zone = Some(n);
                        let t = self.now();
                        self.rebuild(ctx, t);
                    }
                    Knob::DualStack(d) => {
                        self.shared.knobs.dual_stack = Some(d);
                        let t = self.now();
                        self.rebuild(ctx, t);
                    }
                    Knob::ProxyMode(m) => {
                        self.shared.knobs.proxy_mode = Some(m);
                        let t = self.now();
                        self.rebuild(ctx, t);
                    }
                    Knob::Replicas(r) => {
                        if let Some(w) = self.tl.scenario.world.workloads.first() {
                            let name = w.name.clone();
                            self.act(Action::Scale {
                                workload: name,
                                replicas: r.min(10_000),
                            });
                        }
                    }
                    Knob::MaxPerSlice(m) => self.act(Action::SetMaxEndpointsPerSlice {
                        max: m.clamp(1, 1000),
                    }),
                    Knob::Rate(r) => self.act(Action::SetTrafficRate {
                        rate: r.clamp(0.0, 1000.0),
                        flow: None,
                    }),
                    Knob::TrafficDistribution(t) => patch.traffic_distribution = Some(t),
                    Knob::TopologyAuto(a) => patch.topology_auto = Some(a),
                    Knob::InternalPolicy(p) => patch.internal_policy = Some(p),
                    Knob::ExternalPolicy(p) => patch.external_policy = Some(p),
                    Knob::SessionAffinity(a) => patch.session_affinity = Some(a),
                }
                if let Some(p) = patch.service_patch() {
                    if patch.validate().is_ok() && !svc.is_empty() {
                        self.act(Action::EditService {
                            service: svc,
                            patch: p,
                        });
                    }
                }
                self.write_url(ctx, true);
                true
            }
            Msg::SelectService(s) => {
                self.service = s;
                true
            }
            Msg::SelectNode(n) => {
                self.node = n;
                true
            }
            Msg::TogglePanel(p) => {
                if let Some(i) = self.panels.iter().position(|x| *x == p) {
                    self.panels.remove(i);
                } else {
                    self.panels.push(p);
                    slicelab_core::sort::all(&mut self.panels);
                }
                true
            }
            Msg::Help(on) => {
                self.help = on;
                true
            }
            Msg::Theme => {
                let dark = !self.dark.unwrap_or_else(prefers_dark);
                self.dark = Some(dark);
                // The charts pick their colours from the theme.
                self.charts_drawn.borrow_mut().0 = u64::MAX;
                true
            }
            Msg::ObjectsKind(k) => {
                self.obj_kind = k;
                self.obj_key.clear();
                true
            }
            Msg::ObjectsMode(m) => {
                self.obj_mode = m;
                true
            }
            Msg::ObjectsKey(k) => {
                self.obj_key = k;
                true
            }
            Msg::ShowRules(on) => {
                self.show_rules = on;
                true
            }
            Msg::LogFilter(f) => {
                self.log_filter = f;
                true
            }
            Msg::Key(e) => return self.on_key(ctx, e),
            Msg::DismissError => {
                self.error = None;
                true
            }
            Msg::PasteText(t) => {
                self.paste_text = t;
                false
            }
            Msg::PasteRun => {
                let max = self.tl.current.config.max_endpoints_per_slice;
                self.paste_result = Some(slicelab_core::paste::run(&self.paste_text, max));
                true
            }
            Msg::PasteExample => {
                self.paste_text = slicelab_core::paste::EXAMPLE.to_string();
                self.paste_result = None;
                true
            }
        };
        if let Some(r) = &ctx.props().remote {
            r.now.set(self.seeking.unwrap_or(self.now()));
        }
        changed
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        if self.panels.contains(&Panel::Charts) {
            // Paused: every chart at once. Playing: one chart per render, at most five a second.
            let now = perf_now();
            let (t_drawn, wall, _) = *self.charts_drawn.borrow();
            if t_drawn != self.now() {
                if t_drawn == u64::MAX || !self.playing {
                    charts::draw(&self.chart_refs, &self.tl.current);
                    *self.charts_drawn.borrow_mut() = (self.now(), now, 0);
                } else if now - wall > 200.0 {
                    // Drawn at the start of the next frame, before anything changes the page:
                    // drawing text needs the page's style, and here it is not computed yet.
                    self.chart_due.set(true);
                }
            }
        } else {
            // Drawn again when shown.
            self.charts_drawn.borrow_mut().0 = u64::MAX;
        }
    }

    fn destroy(&mut self, ctx: &Context<Self>) {
        self.chart_due.set(false);
        self.stop_frames();
        if let Some(cb) = self.keys.take() {
            if let Some(d) = window().and_then(|w| w.document()) {
                let _ =
                    d.remove_event_listener_with_callback("keydown", cb.as_ref().unchecked_ref());
            }
        }
        if let Some(r) = &ctx.props().remote {
            *r.scope.borrow_mut() = None;
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let started = perf_now();
        let html = self.view_inner(ctx);
        self.view_cost.set(perf_now() - started);
        html
    }
}

impl App {
    fn view_inner(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let embed = self.shared.embed;
        let theme = match self.dark {
            Some(true) => "dark",
            Some(false) => "light",
            None => "auto",
        };
        let onkeydown = if ctx.props().global_keys {
            Callback::noop()
        } else {
            link.callback(Msg::Key)
        };
        html! {
            <div class={classes!("slicelab", embed.then_some("embed"))} data-theme={theme} tabindex="-1" {onkeydown} data-testid="app">
                { self.view_header(ctx) }
                { self.view_controls(ctx) }
                { for self.error.as_ref().map(|e| html! {
                    <div class="banner error" role="alert" data-testid="error">
                        <span>{e.clone()}</span>
                        <button onclick={link.callback(|_| Msg::DismissError)} aria-label="Dismiss">{"×"}</button>
                    </div>
                }) }
                <p class="sr-only" aria-live="polite" data-testid="announce">{ self.announce.clone() }</p>
                <main class="panels">
                    { for self.panels.iter().map(|p| self.view_panel(ctx, *p)) }
                </main>
                { self.view_menu(ctx) }
                { if self.help { self.view_help(ctx) } else { html! {} } }
            </div>
        }
    }
}

fn prefers_dark() -> bool {
    window()
        .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
        .map(|m| m.matches())
        .unwrap_or(false)
}

fn input_value(e: &Event) -> String {
    e.target()
        .and_then(|t| {
            t.clone()
                .dyn_into::<HtmlInputElement>()
                .map(|i| {
                    if i.type_() == "checkbox" {
                        i.checked().to_string()
                    } else {
                        i.value()
                    }
                })
                .ok()
                .or_else(|| t.dyn_into::<HtmlSelectElement>().ok().map(|s| s.value()))
        })
        .unwrap_or_default()
}

fn speed_to_slider(s: f64) -> f64 {
    (s.ln() - SPEED_MIN.ln()) / (SPEED_MAX.ln() - SPEED_MIN.ln()) * 1000.0
}

fn slider_to_speed(v: f64) -> f64 {
    (SPEED_MIN.ln() + v / 1000.0 * (SPEED_MAX.ln() - SPEED_MIN.ln())).exp()
}

fn speed_text(s: f64) -> String {
    if s < 1.0 {
        format!("×{s:.2}")
    } else if s < 10.0 {
        format!("×{s:.1}")
    } else {
        format!("×{s:.0}")
    }
}

impl App {
    fn view_header(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let sc = &self.tl.scenario;
        let scenarios = &self.scenarios;
        let on_scenario = link.callback(|e: Event| Msg::Knob(Knob::Scenario(input_value(&e))));
        html! {
            <header class="top">
                <div class="brand">
                    <svg class="logo" viewBox="0 0 24 24" aria-hidden="true"><rect x="2" y="4" width="20" height="4" rx="1.5"/><rect x="2" y="10" width="14" height="4" rx="1.5"/><rect x="2" y="16" width="8" height="4" rx="1.5"/></svg>
                    <span class="name">{"Slicelab"}</span>
                </div>
                <label class="scenario">
                    <span class="sr-only">{"Scenario"}</span>
                    <select data-testid="scenario" onchange={on_scenario} aria-label="Scenario">
                        { for scenarios.iter().map(|(id, title)| html! {
                            <option value={id.clone()} selected={*id == sc.id}>{title.clone()}</option>
                        }) }
                    </select>
                </label>
                <p class="desc">{ sc.description.clone() }</p>
                <nav class="toggles" aria-label="Panels">
                    { for Panel::ALL.iter().enumerate().map(|(i, p)| {
                        let p = *p;
                        let on = self.panels.contains(&p);
                        html! {
                            <button class={classes!("toggle", on.then_some("on"))} aria-pressed={on.to_string()}
                                data-testid={format!("panel-{}", p.id())} title={format!("{} (key {})", p.title(), i + 1)}
                                onclick={link.callback(move |_| Msg::TogglePanel(p))}>{ p.title() }</button>
                        }
                    }) }
                </nav>
                <div class="tools">
                    <button data-testid="theme" onclick={link.callback(|_| Msg::Theme)} title="Light or dark (d)" aria-label="Switch light or dark theme">{"◐"}</button>
                    <button data-testid="help" onclick={link.callback(|_| Msg::Help(true))} title="Keyboard shortcuts (?)" aria-label="Keyboard shortcuts">{"?"}</button>
                </div>
            </header>
        }
    }

    fn view_controls(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let now = self.seeking.unwrap_or(self.now());
        let on_scrub = link.callback(|e: InputEvent| {
            let v = e
                .target_dyn_into::<HtmlInputElement>()
                .and_then(|i| slicelab_core::float::parse(&i.value()))
                .unwrap_or(0.0);
            Msg::Scrub(v as u64)
        });
        let on_speed = link.callback(|e: InputEvent| {
            let v = e
                .target_dyn_into::<HtmlInputElement>()
                .and_then(|i| slicelab_core::float::parse(&i.value()))
                .unwrap_or(500.0);
            Msg::Speed(slider_to_speed(v))
        });
        let (play_label, play_icon) = if self.playing {
            ("Pause (space)", "M6 4h4v16H6zM14 4h4v16h-4z")
        } else {
            ("Play (space)", "M7 4v16l13-8z")
        };
        // Marks on the scrub bar: the scenario's and the user's actions.
        let marks: Vec<(u64, String)> = self
            .tl
            .scenario
            .actions
            .iter()
            .chain(self.shared.actions.iter())
            .map(|a| (a.at.0, a.action.describe()))
            .collect();
        html! {
            <div class="controls" role="toolbar" aria-label="Timeline">
                <button data-testid="restart" onclick={link.callback(|_| Msg::Restart)} title="Back to the start (0)" aria-label="Back to the start">{ icon("M5 4h2v16H5zM19 4v16L8 12z") }</button>
                <button data-testid="step-back" onclick={link.callback(|_| Msg::StepBack)} title="Step back one change (←)" aria-label="Step back">{ icon("M18 4v16L6 12z") }</button>
                <button data-testid="play" class="play" onclick={link.callback(|_| Msg::TogglePlay)} title={play_label} aria-label={play_label} aria-pressed={self.playing.to_string()}>{ icon(play_icon) }</button>
                <button data-testid="step-forward" onclick={link.callback(|_| Msg::StepForward)} title="Step forward one change (→)" aria-label="Step forward">{ icon("M6 4v16l10-8zM17 4h2v16h-2z") }</button>
                <div class="scrub">
                    <input type="range" data-testid="timeline" min="0" max={self.end_ms.to_string()} step="100" value={now.to_string()}
                        oninput={on_scrub} aria-label="Time" aria-valuetext={fmt_ms(now)} />
                    <div class="marks" aria-hidden="true">
                        { for marks.iter().filter(|(t, _)| *t <= self.end_ms).map(|(t, what)| html! {
                            <span class="mark" style={format!("left:{:.3}%", *t as f64 * 100.0 / self.end_ms.max(1) as f64)} title={format!("{} {}", fmt_ms(*t), what)}></span>
                        }) }
                    </div>
                </div>
                <output class="clock" data-testid="clock">{ format!("{} / {}", fmt_ms(now), fmt_ms(self.end_ms)) }</output>
                { if self.seeking.is_some() { html! {
                    <span class="seeking" data-testid="seeking" role="status">{ format!("computing the run: at {}", fmt_ms(self.now())) }</span>
                } } else { html! {} } }
                <label class="speed">
                    <span>{"speed"}</span>
                    <input type="range" data-testid="speed" min="0" max="1000" value={format!("{:.0}", speed_to_slider(self.speed))} oninput={on_speed}
                        aria-label="Speed" aria-valuetext={speed_text(self.speed)} />
                    <output>{ speed_text(self.speed) }</output>
                </label>
            </div>
        }
    }

    fn view_panel(&self, ctx: &Context<Self>, p: Panel) -> Html {
        let sim = &self.tl.current;
        let rv = sim.api.resource_version();
        let body = match p {
            Panel::Cluster => {
                // Staleness moves with kube-proxy syncs, not API writes.
                let syncs: u64 = sim
                    .proxies
                    .values()
                    .map(|p| p.syncs + p.informer.connected as u64)
                    .sum();
                // Deleted Pods fade out for a while after the last write.
                let fading: Vec<u64> = sim.recently_gone().map(|(t, _)| *t).collect();
                let stamp = stamp_of((
                    rv,
                    &self.open,
                    syncs,
                    fading,
                    &self.node,
                    self.panels.contains(&Panel::Proxy),
                ));
                self.memo(&self.cluster_cache, stamp, || self.view_cluster(ctx))
            }
            Panel::Slices => {
                let flashing = sim
                    .log
                    .last()
                    .is_some_and(|e| e.t + slicelab_core::sim::view::FLASH_MS >= sim.now);
                let flash_tick = if flashing { sim.now / 100 } else { 0 };
                let stamp = stamp_of((
                    rv,
                    flash_tick,
                    &self.service,
                    sim.config.max_endpoints_per_slice,
                ));
                self.memo(&self.slices_cache, stamp, || self.view_slices(ctx))
            }
            Panel::Proxy => self.view_proxy(ctx),
            Panel::Log => self.view_log(ctx),
            Panel::Objects => self.view_objects(ctx),
            Panel::Charts => self.chart_refs.view(),
            Panel::Knobs => self.view_knobs(ctx),
            Panel::Paste => self.view_paste(ctx),
        };
        html! {
            <section class={classes!("panel", format!("panel-{}", p.id()))} aria-label={p.title()} data-testid={format!("view-{}", p.id())}>
                <h2>{ p.title() }</h2>
                { body }
            </section>
        }
    }

    fn memo(
        &self,
        cache: &RefCell<Option<(u64, Html)>>,
        stamp: u64,
        build: impl FnOnce() -> Html,
    ) -> Html {
        let mut c = cache.borrow_mut();
        let html = match &*c {
            Some((s, h)) if *s == stamp => h.clone(),
            _ => {
                let h = build();
                *c = Some((stamp, h.clone()));
                h
            }
        };
        html! { <Memo {stamp} {html} /> }
    }

    fn view_cluster(&self, ctx: &Context<Self>) -> Html {
        let total = self.tl.current.api.pods().count();
        // Past this many Pods, each node shows its mix of states instead of one token per Pod
        // (and the Pods are only counted, not listed).
        let compact = total > DETAIL_LIMIT;
        let (zones, unscheduled, unscheduled_states) =
            self.tl.current.cluster_view_counted(!compact);
        let mut counts = unscheduled_states;
        for n in zones.iter().flat_map(|z| &z.nodes) {
            for (c, k) in counts.iter_mut().zip(n.states) {
                *c += k;
            }
        }
        let unscheduled_total: usize = unscheduled_states.iter().sum();
        let legend = [
            PodState::Pending,
            PodState::NotReady,
            PodState::Ready,
            PodState::Terminating,
            PodState::Failed,
        ];
        html! {
            <>
                <ul class="legend" aria-label="Pod states">
                    { for legend.iter().map(|s| html! {
                        <li><span class={classes!("pod", "swatch", s.class())} aria-hidden="true"></span>{ format!("{} {}", counts[*s as usize], s.name()) }</li>
                    }) }
                </ul>
                { if compact { html! { <p class="note">{ format!("{total} Pods: each node shows how many of its Pods are in each state (tokens are drawn up to {DETAIL_LIMIT} Pods).") }</p> } } else { html! {} } }
                <div class={classes!("zones", (total > ANIMATE_LIMIT).then_some("busy"))} onclick={pod_click(ctx)} style={format!("grid-template-columns: repeat({}, minmax(0, 1fr))", zones.len().max(1))}>
                    { for zones.iter().map(|z| html! {
                        <div class="zone" key={z.name.clone()}>
                            <h3>{ z.name.clone() }</h3>
                            { for z.nodes.iter().map(|n| self.view_node_memo(ctx, n, compact)) }
                        </div>
                    }) }
                </div>
                { if unscheduled_total == 0 { html! {} } else { html! {
                    <div class={classes!("unscheduled", (total > ANIMATE_LIMIT).then_some("busy"))}>
                        <h3>{ format!("Not scheduled yet ({unscheduled_total})") }</h3>
                        { if compact { mix_bar(&unscheduled_states) } else { html! {
                            <div class="pods" onclick={pod_click(ctx)}>{ for unscheduled.iter().map(|p| self.view_pod(ctx, p)) }</div>
                        } } }
                    </div>
                } } }
            </>
        }
    }

    /// A slice's bar, rebuilt only when the slice or its flash changed.
    fn slice_bar_memo(&self, s: &SliceView, max: usize, detail: bool) -> Html {
        let id = format!("{}/{}", s.address_type, s.name);
        keyed_memo(&self.slice_cache, id, stamp_of((s, max, detail)), || {
            slice_bar(s, max, detail)
        })
    }

    /// A node's box, rebuilt only when what it shows changed (its Pods, badges, selection).
    fn view_node_memo(&self, ctx: &Context<Self>, n: &NodeView, compact: bool) -> Html {
        let selected = self.node == n.name && self.panels.contains(&Panel::Proxy);
        let stamp = stamp_of((n, compact, selected, &self.open));
        keyed_memo(&self.node_cache, n.name.clone(), stamp, || {
            self.view_node(ctx, n, compact)
        })
    }

    fn view_node(&self, ctx: &Context<Self>, n: &NodeView, compact: bool) -> Html {
        let link = ctx.link();
        let name = n.name.clone();
        let open = {
            let name = name.clone();
            link.callback(move |_| Msg::Open(Some(Target::Node(name.clone()))))
        };
        let onkeydown = {
            let name = name.clone();
            link.batch_callback(move |e: KeyboardEvent| {
                (e.key() == "Enter" && e.target() == e.current_target())
                    .then(|| Msg::Open(Some(Target::Node(name.clone()))))
            })
        };
        let mut badges = Vec::new();
        if n.failed {
            badges.push(("failed", "stopped"));
        } else if !n.ready {
            badges.push(("notready", "NotReady"));
        }
        if n.cordoned {
            badges.push(("cordoned", "cordoned"));
        }
        if n.watch_cut {
            badges.push(("stale", "watch cut"));
        } else if n.stale {
            badges.push(("syncing", "kube-proxy behind"));
        }
        let selected = self.node == n.name && self.panels.contains(&Panel::Proxy);
        html! {
            <div class={classes!("node", n.failed.then_some("failed"), n.stale.then_some("stale"), selected.then_some("selected"))} key={name.clone()}
                data-testid="node" data-node={name.clone()} data-stale={n.stale.to_string()}>
                <div class="node-head" role="button" tabindex="0" onclick={open} {onkeydown}
                    aria-label={format!("node {}{}: actions", n.name, badges.iter().map(|b| format!(", {}", b.1)).collect::<String>())}>
                    <span class="node-name">{ n.name.clone() }</span>
                    { for badges.iter().map(|(c, t)| html! { <span class={classes!("badge", *c)}>{ *t }</span> }) }
                </div>
                { if compact { mix_bar(&n.states) } else { html! {
                    <div class="pods">
                        { for n.pods.iter().map(|p| self.view_pod(ctx, p)) }
                        { for n.gone.iter().map(view_gone_pod) }
                    </div>
                } } }
            </div>
        }
    }

    fn view_pod(&self, _ctx: &Context<Self>, p: &PodView) -> Html {
        let label = format!(
            "pod {}, {}, {}",
            p.name,
            p.state.name(),
            if p.ips.is_empty() {
                "no IP".to_string()
            } else {
                p.ips.join(" ")
            }
        );
        let selected = self.open == Some(Target::Pod(p.key.clone()));
        html! {
            <button class={classes!("pod", p.state.class(), selected.then_some("selected"))} key={p.key.clone()} data-testid="pod"
                data-pod={p.key.clone()} data-state={p.state.class()} data-ip={p.ips.first().cloned().unwrap_or_default()}
                title={label.clone()} aria-label={label}></button>
        }
    }

    fn view_slices(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let sim = &self.tl.current;
        let keys = sim.service_keys();
        let Some(v) = sim.service_view(&self.service) else {
            return html! { <p class="empty">{"No Service."}</p> };
        };
        let detail = v.slices.iter().map(|s| s.endpoints.len()).sum::<usize>() <= DETAIL_LIMIT;
        let max = sim.config.max_endpoints_per_slice;
        let on_service = link.callback(|e: Event| Msg::SelectService(input_value(&e)));
        let families: Vec<&str> = {
            let mut f: Vec<&str> = v.slices.iter().map(|s| s.address_type.as_str()).collect();
            f.dedup();
            f
        };
        html! {
            <>
                { if keys.len() > 1 { html! {
                    <select class="service-pick" onchange={on_service} aria-label="Service" data-testid="service">
                        { for keys.iter().map(|k| html! { <option value={k.clone()} selected={*k == self.service}>{ k.clone() }</option> }) }
                    </select>
                } } else { html! {} } }
                { service_card(&v, max) }
                { for families.iter().map(|fam| {
                    let slices: Vec<&SliceView> = v.slices.iter().filter(|s| s.address_type == *fam).collect();
                    let n: usize = slices.iter().map(|s| s.endpoints.len()).sum();
                    html! {
                        <div class="family">
                            <h3>{ format!("{fam} slices: {} holding {n} endpoints", slices.len()) }</h3>
                            <ul class={classes!("slices", (n > ANIMATE_LIMIT).then_some("busy"))}>{ for slices.iter().map(|s| self.slice_bar_memo(s, max, detail)) }</ul>
                        </div>
                    }
                }) }
                { if v.slices.is_empty() { html! { <p class="empty">{"No EndpointSlices for this Service yet."}</p> } } else { html! {} } }
                { for v.deleted.iter().map(|(name, t, cause)| html! {
                    <p class="deleted" key={name.clone()}>{ format!("{} deleted at {}: {}", name, fmt_ms(*t), cause) }</p>
                }) }
                { legacy_card(&v) }
            </>
        }
    }

    fn view_proxy(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let sim = &self.tl.current;
        let on_node = link.callback(|e: Event| Msg::SelectNode(input_value(&e)));
        let Some(pv) = sim.proxy_view(&self.node, &self.service) else {
            return html! { <p class="empty">{"No node."}</p> };
        };
        let status = if pv.watch_cut {
            html! { <span class="badge stale">{"watch cut: this node keeps routing by what it last saw"}</span> }
        } else if pv.stale {
            html! { <span class="badge syncing">{"behind: the API server has newer slices than this node has programmed"}</span> }
        } else if pv.synced_at.is_none() {
            html! {}
        } else {
            html! { <span class="badge ok">{"up to date"}</span> }
        };
        let conns = sim.recent_connections(1_000);
        let mine: Vec<_> = conns.iter().filter(|c| c.via_node == self.node).collect();
        html! {
            <>
                <div class="proxy-head">
                    <select onchange={on_node} aria-label="Node" data-testid="proxy-node">
                        { for sim.proxies.keys().map(|n| html! { <option value={n.clone()} selected={*n == self.node}>{ n.clone() }</option> }) }
                    </select>
                    <span class="mode">{ format!("mode {}", pv.mode) }</span>
                    <span>{ match pv.synced_at {
                        Some(t) => format!("synced {} ({} syncs)", fmt_ms(t), pv.syncs),
                        None => "not synced yet".to_string(),
                    } }</span>
                    { status }
                </div>
                { proxy_flow(&pv, &mine) }
                { for pv.ports.iter().map(|p| {
                    let usable = p.endpoints.iter().filter(|e| e.usable).count();
                    let mut i = 0usize;
                    html! {
                        <div class="proxy-port" data-testid="proxy-port" data-usable={usable.to_string()} data-endpoints={p.endpoints.len().to_string()}>
                            <h3>{ format!("{} port {} → {} of {} endpoints usable ({})", p.family, if p.port.is_empty() { "(unnamed)".to_string() } else { p.port.clone() }, usable, p.endpoints.len(), p.cluster_ip.clone().unwrap_or_default()) }</h3>
                            { if p.note.is_empty() { html! {} } else { html! { <p class="note">{ p.note.clone() }</p> } } }
                            <table class="eps">
                                <thead><tr><th>{"endpoint"}</th><th>{"state"}</th><th>{"local"}</th><th title="iptables: the probability rule i of n matches, 1/(n−i)">{"pick rule"}</th></tr></thead>
                                <tbody>
                                { for p.endpoints.iter().take(64).map(|e| {
                                    let prob = if e.usable { let r = 1.0 / (usable - i) as f64; i += 1; format!("{r:.5}") } else { "–".into() };
                                    let state = if e.ready { "ready" } else if e.serving && e.terminating { "serving, terminating" } else if e.terminating { "terminating" } else { "not ready" };
                                    html! {
                                        <tr class={classes!(e.usable.then_some("usable"))} data-testid="proxy-endpoint" data-endpoint={e.endpoint.clone()} data-usable={e.usable.to_string()}>
                                            <td><code>{ e.endpoint.clone() }</code></td><td>{ state }</td><td>{ if e.is_local { "yes" } else { "" } }</td><td>{ prob }</td>
                                        </tr>
                                    }
                                }) }
                                </tbody>
                            </table>
                            { if p.endpoints.len() > 64 { html! { <p class="note">{ format!("… and {} more", p.endpoints.len() - 64) }</p> } } else { html! {} } }
                        </div>
                    }
                }) }
                <details open={self.show_rules} ontoggle={link.callback(|e: Event| {
                    let open = e.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()).map(|el| el.has_attribute("open")).unwrap_or(false);
                    Msg::ShowRules(open)
                })}>
                    <summary>{ format!("The {} rules this node wrote", pv.mode) }</summary>
                    { if self.show_rules { html! { <pre class="rules" data-testid="rules">{ sim.proxy_rules(&self.node, 400) }</pre> } } else { html! {} } }
                </details>
            </>
        }
    }

    fn view_log(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let sim = &self.tl.current;
        let f = self.log_filter.clone();
        let entries: Vec<_> = sim
            .log
            .iter()
            .rev()
            .filter(|e| {
                f.is_empty() || (f == "proxy" && e.actor.starts_with("kube-proxy")) || e.actor == f
            })
            .take(150)
            .collect();
        let on_filter = link.callback(|e: Event| Msg::LogFilter(input_value(&e)));
        let filters = [
            ("", "everything"),
            ("endpointslice-controller", "EndpointSlice controller"),
            ("endpoints-controller", "Endpoints controller"),
            ("proxy", "kube-proxy"),
            ("kubelet", "kubelet"),
            ("workload", "workloads"),
            ("node-lifecycle", "node lifecycle"),
            ("traffic", "failed connections"),
            ("action", "your actions"),
        ];
        html! {
            <>
                <select onchange={on_filter} aria-label="Show" data-testid="log-filter">
                    { for filters.iter().map(|(v, t)| html! { <option value={*v} selected={*v == f}>{ *t }</option> }) }
                </select>
                <ol class="log" data-testid="log">
                    { for entries.iter().map(|e| {
                        let t = e.t;
                        html! {
                            <li>
                                <button class="at" onclick={link.callback(move |_| Msg::Seek(t))} title="Seek here">{ fmt_ms(e.t) }</button>
                                <span class={classes!("actor", actor_class(&e.actor))}>{ e.actor.clone() }</span>
                                <span class="what">{ e.what.clone() }</span>
                                <span class="cause">{ e.cause.clone() }</span>
                            </li>
                        }
                    }) }
                </ol>
            </>
        }
    }

    fn view_objects(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let sim = &self.tl.current;
        let kind_name = kubectl::KINDS
            .iter()
            .find(|(k, _)| *k == self.obj_kind)
            .map(|(_, n)| *n)
            .unwrap_or("endpointslices");
        let on_kind = link.callback(|e: Event| {
            let v = input_value(&e);
            Msg::ObjectsKind(
                kubectl::KINDS
                    .iter()
                    .find(|(_, n)| *n == v)
                    .map(|(k, _)| *k)
                    .unwrap_or(Kind::EndpointSlice),
            )
        });
        let keys = kubectl::keys(sim, self.obj_kind);
        let key = if keys.contains(&self.obj_key) {
            self.obj_key.clone()
        } else {
            keys.first().cloned().unwrap_or_default()
        };
        let on_key = link.callback(|e: Event| Msg::ObjectsKey(input_value(&e)));
        let mode_btn = |m: ObjMode, label: &str| {
            html! {
                <button class={classes!("toggle", (self.obj_mode == m).then_some("on"))} aria-pressed={(self.obj_mode == m).to_string()}
                    onclick={link.callback(move |_| Msg::ObjectsMode(m))}>{ label.to_string() }</button>
            }
        };
        let body = match self.obj_mode {
            ObjMode::Get => {
                let (head, rows) = kubectl::get(sim, self.obj_kind);
                html! {
                    <div class="kubectl">
                        <p class="cmd">{ format!("$ kubectl get {kind_name}") }</p>
                        <table>
                            <thead><tr>{ for head.iter().map(|h| html! { <th>{ *h }</th> }) }</tr></thead>
                            <tbody>{ for rows.iter().take(200).map(|r| html! { <tr>{ for r.iter().map(|c| html! { <td>{ c.clone() }</td> }) }</tr> }) }</tbody>
                        </table>
                        { if rows.len() > 200 { html! { <p class="note">{ format!("… {} more", rows.len() - 200) }</p> } } else { html! {} } }
                    </div>
                }
            }
            ObjMode::Describe | ObjMode::Yaml => {
                let (cmd, text) = if self.obj_mode == ObjMode::Yaml {
                    (
                        format!(
                            "$ kubectl get {kind_name} {} -o yaml",
                            key.rsplit('/').next().unwrap_or("")
                        ),
                        kubectl::yaml(sim, self.obj_kind, &key),
                    )
                } else {
                    (
                        format!(
                            "$ kubectl describe {kind_name} {}",
                            key.rsplit('/').next().unwrap_or("")
                        ),
                        kubectl::describe(sim, self.obj_kind, &key),
                    )
                };
                let text = text.unwrap_or_else(|| "(gone)".into());
                let changed = self.changed_lines(&format!("{:?}/{key}", self.obj_mode), &text);
                html! {
                    <div class="kubectl">
                        <select onchange={on_key} aria-label="Object">
                            { for keys.iter().map(|k| html! { <option value={k.clone()} selected={*k == key}>{ k.clone() }</option> }) }
                        </select>
                        <p class="cmd">{ cmd }</p>
                        <pre class="yaml">{ for text.lines().zip(changed).map(|(l, c)| html! { <span class={classes!("line", c.then_some("changed"))}>{ l }{"\n"}</span> }) }</pre>
                    </div>
                }
            }
        };
        html! {
            <>
                <div class="obj-head">
                    <select onchange={on_kind} aria-label="Kind" data-testid="obj-kind">
                        { for kubectl::KINDS.iter().map(|(k, n)| html! { <option value={*n} selected={*k == self.obj_kind}>{ *n }</option> }) }
                    </select>
                    { mode_btn(ObjMode::Get, "get") }
                    { mode_btn(ObjMode::Describe, "describe") }
                    { mode_btn(ObjMode::Yaml, "-o yaml") }
                </div>
                { body }
            </>
        }
    }

    /// Which lines differ from the last different text shown for the same object.
    fn changed_lines(&self, id: &str, text: &str) -> Vec<bool> {
        let mut seen = self.obj_seen.borrow_mut();
        let lines: Vec<&str> = text.lines().collect();
        match seen.get(id) {
            Some((old, marks)) if old == text => marks.clone(),
            Some((old, _)) => {
                let before: std::collections::BTreeSet<&str> =
                    slicelab_core::sort::set(old.lines());
                let marks: Vec<bool> = lines.iter().map(|l| !before.contains(l)).collect();
                seen.insert(id.to_string(), (text.to_string(), marks.clone()));
                marks
            }
            None => {
                let marks = vec![false; lines.len()];
                seen.insert(id.to_string(), (text.to_string(), marks.clone()));
                marks
            }
        }
    }

    fn view_paste(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let oninput = link.callback(|e: InputEvent| {
            Msg::PasteText(
                e.target_dyn_into::<web_sys::HtmlTextAreaElement>()
                    .map(|t| t.value())
                    .unwrap_or_default(),
            )
        });
        let max = self.tl.current.config.max_endpoints_per_slice;
        let result = match &self.paste_result {
            None => html! {},
            Some(Err(e)) => {
                html! { <p class="banner error" role="alert" data-testid="paste-error">{ e.clone() }</p> }
            }
            Some(Ok(r)) => html! {
                <div class="paste-result" data-testid="paste-result">
                    <p>{ format!("Service {}: {} Pods selected; the EndpointSlice controller makes {} API call{}.", r.service, r.selected_pods, r.calls.len(), if r.calls.len() == 1 { "" } else { "s" }) }</p>
                    { for r.ignored_services.first().map(|_| html! { <p class="note">{ format!("Only the first Service is synced; also pasted: {}", r.ignored_services.join(", ")) }</p> }) }
                    { for r.error.as_ref().map(|e| html! { <p class="warn">{ format!("The sync returns an error (the slices are still written): {e}") }</p> }) }
                    { for r.events.iter().map(|e| html! { <p class="note">{ format!("event: {e}") }</p> }) }
                    <ol class="calls">
                        { for r.calls.iter().map(|c| html! { <li><b>{ c.verb }</b>{ format!(" EndpointSlice {} ({} endpoints): {}", c.slice, c.endpoints, c.cause) }</li> }) }
                    </ol>
                    { for r.endpoints.as_ref().map(|e| {
                        let (ready, not_ready) = e.subsets.iter().flatten().fold((0, 0), |(a, b), s| (a + s.addresses.as_ref().map_or(0, Vec::len), b + s.not_ready_addresses.as_ref().map_or(0, Vec::len)));
                        html! { <p class="note">{ format!("Legacy Endpoints {}: {ready} ready and {not_ready} not ready addresses.", e.metadata.name.clone().unwrap_or_default()) }</p> }
                    }) }
                    <h3>{ "The slices afterwards, as kubectl apply takes them" }</h3>
                    { for r.slices.iter().map(|s| html! {
                        <pre class="yaml" data-testid="paste-slice">{ slicelab_core::paste::apply_yaml(s) }</pre>
                    }) }
                </div>
            },
        };
        html! {
            <>
                <p class="note">{ format!("Paste `kubectl get -o yaml` output: a Service with its Pods, the Nodes and the EndpointSlices that exist (YAML documents, a List, or JSON). One sync of the controllers runs on them, at max {max} endpoints per slice; nothing is sent anywhere.") }</p>
                <textarea class="paste" data-testid="paste-input" spellcheck="false" aria-label="Your objects (YAML or JSON)" value={self.paste_text.clone()} {oninput} />
                <div class="paste-buttons">
                    <button data-testid="paste-run" onclick={link.callback(|_| Msg::PasteRun)}>{"Run the controllers"}</button>
                    <button onclick={link.callback(|_| Msg::PasteExample)}>{"Load the example"}</button>
                </div>
                { result }
            </>
        }
    }

    fn view_knobs(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let sim = &self.tl.current;
        let sc = &self.tl.scenario;
        let svc = sim.service_view(&self.service);
        let replicas = sc.world.workloads.first().map(|w| w.replicas).unwrap_or(0);
        let live_replicas = self
            .shared
            .actions
            .iter()
            .chain(sc.actions.iter())
            .filter(|a| a.at.0 <= self.now())
            .filter_map(|a| match &a.action {
                Action::Scale { replicas, .. } => Some((a.at.0, *replicas)),
                _ => None,
            })
            .max_by_key(|x| x.0)
            .map(|x| x.1)
            .unwrap_or(replicas);
        let rate = sim.traffic.flows.first().map(|f| f.rate).unwrap_or(0.0);
        let td = svc
            .as_ref()
            .and_then(|s| s.traffic_distribution.clone())
            .unwrap_or_default();
        let topo = svc
            .as_ref()
            .and_then(|s| s.topology_mode.clone())
            .is_some_and(|m| m.eq_ignore_ascii_case("auto"));
        let itp = svc
            .as_ref()
            .map(|s| s.policies.contains("internal Local"))
            .unwrap_or(false);
        let etp = svc
            .as_ref()
            .map(|s| s.policies.contains("external Local"))
            .unwrap_or(false);
        let aff = svc
            .as_ref()
            .map(|s| s.session_affinity == "ClientIP")
            .unwrap_or(false);
        let mode = sc
            .config
            .proxy_mode
            .clone()
            .unwrap_or_else(|| "iptables".into());
        let num = |e: &Event| slicelab_core::float::parse(&input_value(e)).unwrap_or(0.0);
        let on_seed = link.batch_callback(|e: Event| {
            input_value(&e)
                .parse::<u64>()
                .ok()
                .map(|s| Msg::Knob(Knob::Seed(s)))
        });
        let on_replicas = link.callback(move |e: Event| Msg::Knob(Knob::Replicas(num(&e) as u32)));
        let on_max = link.callback(move |e: Event| Msg::Knob(Knob::MaxPerSlice(num(&e) as usize)));
        let on_rate = link.callback(move |e: Event| Msg::Knob(Knob::Rate(num(&e))));
        let on_zones = link.callback(move |e: Event| Msg::Knob(Knob::Zones(num(&e) as u32)));
        let on_npz = link.callback(move |e: Event| Msg::Knob(Knob::NodesPerZone(num(&e) as u32)));
        let on_dual =
            link.callback(|e: Event| Msg::Knob(Knob::DualStack(input_value(&e) == "true")));
        let on_mode = link.callback(|e: Event| Msg::Knob(Knob::ProxyMode(input_value(&e))));
        let on_td = link.callback(|e: Event| Msg::Knob(Knob::TrafficDistribution(input_value(&e))));
        let on_topo =
            link.callback(|e: Event| Msg::Knob(Knob::TopologyAuto(input_value(&e) == "true")));
        let on_itp = link.callback(|e: Event| {
            Msg::Knob(Knob::InternalPolicy(if input_value(&e) == "true" {
                "Local".into()
            } else {
                "Cluster".into()
            }))
        });
        let on_etp = link.callback(|e: Event| {
            Msg::Knob(Knob::ExternalPolicy(if input_value(&e) == "true" {
                "Local".into()
            } else {
                "Cluster".into()
            }))
        });
        let on_aff =
            link.callback(|e: Event| Msg::Knob(Knob::SessionAffinity(input_value(&e) == "true")));
        let fixed_nodes = !sc.world.nodes.is_empty();
        html! {
            <form class="knobs" onsubmit={Callback::from(|e: SubmitEvent| e.prevent_default())}>
                <fieldset>
                    <legend>{"The run (changes act now)"}</legend>
                    <label>{ format!("replicas: {live_replicas}") }<input type="range" min="0" max="1000" value={live_replicas.to_string()} onchange={on_replicas} data-testid="knob-replicas" /></label>
                    <label>{ format!("max endpoints per slice: {}", sim.config.max_endpoints_per_slice) }<input type="range" min="1" max="1000" value={sim.config.max_endpoints_per_slice.to_string()} onchange={on_max} data-testid="knob-max" /></label>
                    <label>{ format!("traffic: {rate:.0} connections/s") }<input type="range" min="0" max="500" value={format!("{rate:.0}")} onchange={on_rate} data-testid="knob-rate" /></label>
                    <label>{"trafficDistribution "}
                        <select onchange={on_td} data-testid="knob-td">
                            { for ["", "PreferClose", "PreferSameZone", "PreferSameNode"].iter().map(|v| html! { <option value={*v} selected={*v == td}>{ if v.is_empty() { "(none)" } else { v } }</option> }) }
                        </select>
                    </label>
                    <label class="check"><input type="checkbox" checked={topo} onchange={on_topo} data-testid="knob-topology" />{"topology-mode: Auto"}</label>
                    <label class="check"><input type="checkbox" checked={itp} onchange={on_itp} data-testid="knob-itp" />{"internalTrafficPolicy: Local"}</label>
                    <label class="check"><input type="checkbox" checked={etp} onchange={on_etp} data-testid="knob-etp" />{"externalTrafficPolicy: Local"}</label>
                    <label class="check"><input type="checkbox" checked={aff} onchange={on_aff} data-testid="knob-affinity" />{"sessionAffinity: ClientIP"}</label>
                </fieldset>
                <fieldset>
                    <legend>{"The world (changes restart the run, then come back to this time)"}</legend>
                    <label>{"seed "}<input type="number" min="0" value={sc.seed.to_string()} onchange={on_seed} data-testid="knob-seed" /></label>
                    <label>{ format!("zones: {}", sc.world.zones.len()) }<input type="range" min="1" max="6" value={sc.world.zones.len().to_string()} disabled={fixed_nodes} onchange={on_zones} data-testid="knob-zones" /></label>
                    <label>{ format!("nodes per zone: {}", sc.world.nodes_per_zone.unwrap_or(1)) }<input type="range" min="1" max="20" value={sc.world.nodes_per_zone.unwrap_or(1).to_string()} disabled={fixed_nodes} onchange={on_npz} data-testid="knob-npz" /></label>
                    <label class="check"><input type="checkbox" checked={sc.world.dual_stack} onchange={on_dual} data-testid="knob-dual" />{"dual-stack"}</label>
                    <label>{"kube-proxy mode "}
                        <select onchange={on_mode} data-testid="knob-mode">
                            { for ["iptables", "nftables", "ipvs"].iter().map(|v| html! { <option value={*v} selected={*v == mode}>{ *v }</option> }) }
                        </select>
                    </label>
                </fieldset>
            </form>
        }
    }

    fn view_menu(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let Some(t) = &self.open else { return html! {} };
        let item = |label: &str, testid: &str, a: Action| {
            html! { <button data-testid={testid.to_string()} onclick={link.callback(move |_| Msg::Act(a.clone()))}>{ label.to_string() }</button> }
        };
        let (title, items) = match t {
            Target::Pod(key) => {
                let p = key.clone();
                let labels = self
                    .tl
                    .current
                    .api
                    .pod(key)
                    .and_then(|p| p.metadata.labels.clone())
                    .unwrap_or_default();
                let mut moved = labels.clone();
                let leaves = moved.iter().next().map(|(k, _)| k.clone());
                if let Some(k) = &leaves {
                    moved.insert(k.clone(), format!("{}-debug", labels[k]));
                }
                (
                    format!("Pod {}", key.rsplit('/').next().unwrap_or(key)),
                    vec![
                        item(
                            "Kill (crash: Failed, replaced)",
                            "act-kill",
                            Action::KillPod { pod: p.clone() },
                        ),
                        item(
                            "Make unready (probe fails)",
                            "act-unready",
                            Action::SetPodReady {
                                pod: p.clone(),
                                ready: false,
                            },
                        ),
                        item(
                            "Make ready again",
                            "act-ready",
                            Action::SetPodReady {
                                pod: p.clone(),
                                ready: true,
                            },
                        ),
                        item(
                            "Delete (graceful)",
                            "act-delete",
                            Action::DeletePod { pod: p.clone() },
                        ),
                        item(
                            "Relabel (leaves the selector)",
                            "act-relabel",
                            Action::RelabelPod {
                                pod: p,
                                labels: slicelab_core::sort::map(moved),
                            },
                        ),
                    ],
                )
            }
            Target::Node(n) => {
                let node = n.clone();
                let show = {
                    let node = node.clone();
                    html! { <button data-testid="act-show-proxy" onclick={link.batch_callback(move |_| vec![Msg::SelectNode(node.clone()), Msg::Open(None)])}>{"Show its kube-proxy view"}</button> }
                };
                let mut v = vec![
                    show,
                    item(
                        "Fail (stops; pods evicted later)",
                        "act-fail",
                        Action::FailNode { node: node.clone() },
                    ),
                    item(
                        "Drain (cordon, evict gracefully)",
                        "act-drain",
                        Action::DrainNode { node: node.clone() },
                    ),
                    item(
                        "Recover",
                        "act-recover",
                        Action::RecoverNode { node: node.clone() },
                    ),
                ];
                if self
                    .tl
                    .current
                    .proxies
                    .get(n)
                    .is_some_and(|p| !p.informer.connected)
                {
                    v.push(item(
                        "Restore kube-proxy's watch",
                        "act-restore-watch",
                        Action::RestoreWatch { node },
                    ));
                } else {
                    v.push(item(
                        "Cut kube-proxy's watch (stale view)",
                        "act-cut-watch",
                        Action::CutWatch { node },
                    ));
                }
                (format!("Node {n}"), v)
            }
        };
        html! {
            <div class="menu-backdrop" onclick={link.callback(|_| Msg::Open(None))}>
                <div class="menu" role="dialog" aria-label={title.clone()} data-testid="menu" onclick={Callback::from(|e: MouseEvent| e.stop_propagation())}>
                    <h3>{ title }</h3>
                    { for items }
                    <button class="cancel" onclick={link.callback(|_| Msg::Open(None))}>{"Cancel (Esc)"}</button>
                </div>
            </div>
        }
    }

    fn view_help(&self, ctx: &Context<Self>) -> Html {
        let keys = [
            ("space or k", "play or pause"),
            ("→ or .", "step forward to the next change"),
            ("← or ,", "step back to the previous change"),
            ("shift + → / ←", "seek 10 s forward or back"),
            ("+ / −", "faster or slower"),
            ("0 or Home", "back to the start"),
            ("1 … 8", "show or hide a panel"),
            ("d", "light or dark theme"),
            ("Enter on a node", "its actions (Pods: click or Enter)"),
            ("Esc", "close this or a menu"),
            ("?", "this list"),
        ];
        html! {
            <div class="menu-backdrop" onclick={ctx.link().callback(|_| Msg::Help(false))}>
                <div class="menu help" role="dialog" aria-label="Keyboard shortcuts" data-testid="help-overlay">
                    <h3>{"Keyboard shortcuts"}</h3>
                    <dl>{ for keys.iter().map(|(k, v)| html! { <><dt><kbd>{ *k }</kbd></dt><dd>{ *v }</dd></> }) }</dl>
                    <p class="note">{"Every action forks the timeline: the future after it is recomputed. The link in the address bar reproduces what you see."}</p>
                </div>
            </div>
        }
    }
}

/// One handler for every Pod token below it: the token's `data-pod` names the Pod.
fn pod_click(ctx: &Context<App>) -> Callback<MouseEvent> {
    ctx.link().batch_callback(|e: MouseEvent| {
        let el = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())?;
        let pod = el
            .closest("[data-pod]")
            .ok()
            .flatten()?
            .get_attribute("data-pod")?;
        Some(Msg::Open(Some(Target::Pod(pod))))
    })
}

/// A small inline icon (no icon font: nothing is fetched).
fn icon(path: &'static str) -> Html {
    html! { <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d={path} /></svg> }
}

fn actor_class(a: &str) -> &'static str {
    if a.starts_with("kube-proxy") {
        "proxy"
    } else if a.starts_with("endpoint") {
        "controller"
    } else if a == "traffic" {
        "traffic"
    } else if a == "action" {
        "action"
    } else {
        "other"
    }
}

fn service_card(v: &ServiceView, max: usize) -> Html {
    let rows = [
        ("type", v.type_.clone()),
        ("selector", v.selector.clone()),
        ("ports", v.ports.clone()),
        (
            "clusterIPs",
            if v.cluster_ips.is_empty() {
                "None (headless)".into()
            } else {
                v.cluster_ips.join(", ")
            },
        ),
        ("families", v.families.clone()),
        ("traffic policies", v.policies.clone()),
        (
            "trafficDistribution",
            v.traffic_distribution
                .clone()
                .unwrap_or_else(|| "(none)".into()),
        ),
        (
            "topology-mode",
            v.topology_mode.clone().unwrap_or_else(|| "(none)".into()),
        ),
        ("sessionAffinity", v.session_affinity.clone()),
        ("max endpoints per slice", max.to_string()),
    ];
    html! {
        <div class="service-card" data-testid="service-card">
            <h3>{ format!("Service {}", v.key) }</h3>
            <dl>{ for rows.iter().map(|(k, val)| html! { <><dt>{ *k }</dt><dd>{ val.clone() }</dd></> }) }</dl>
        </div>
    }
}

fn slice_bar(s: &SliceView, max: usize, detail: bool) -> Html {
    let n = s.endpoints.len();
    let cap = max.max(n).max(1);
    let ready = s.endpoints.iter().filter(|e| e.ready).count();
    let flash = s
        .last_write
        .as_ref()
        .map(|(_, verb, cause)| (verb.clone(), cause.clone()));
    let class = classes!("slice", flash.as_ref().map(|(v, _)| format!("flash-{v}")));
    html! {
        <li class={class} key={s.name.clone()} data-testid="slice" data-endpoints={n.to_string()} data-name={s.name.clone()} data-family={s.address_type.clone()}>
            <div class="slice-head">
                <code>{ s.name.clone() }</code>
                <span class="count">{ format!("{n} / {max}") }</span>
                <span class="gen" title="metadata.generation">{ format!("gen {}", s.generation) }</span>
                { for flash.map(|(verb, cause)| html! { <span class="why" data-testid="slice-why">{ format!("{verb}: {cause}") }</span> }) }
            </div>
            <div class="bar" role="img" aria-label={format!("{n} of {max} endpoints, {ready} ready")}>
                <div class="fill" style={format!("width:{:.3}%", 100.0 * n as f64 / cap as f64)}></div>
            </div>
            { if !detail { return_mix(s) } else { html! {
            <div class="eps-cells">
                { for s.endpoints.iter().map(|e| {
                    let st = if e.ready { "ready" } else if e.serving { "serving" } else if e.terminating { "terminating" } else { "notready" };
                    let title = format!("{} {} {}{}", e.address, e.pod.clone().unwrap_or_default(), st, if e.hints.is_empty() { String::new() } else { format!(" hints: {}", e.hints.join(",")) });
                    html! { <span class={classes!("ep", st)} key={e.address.clone()} data-testid="endpoint" data-ip={e.address.clone()} data-pod={e.pod.clone().unwrap_or_default()} title={title}></span> }
                }) }
            </div>
            } } }
        </li>
    }
}

/// A Pod deleted a moment ago, fading out where it was (not a control: it no longer exists).
fn view_gone_pod(p: &PodView) -> Html {
    html! {
        <span class={classes!("pod", "gone", p.state.class())} key={p.key.clone()} data-testid="pod-gone"
            data-pod={p.key.clone()} title={format!("pod {}: deleted", p.name)} aria-hidden="true"></span>
    }
}

/// A node's Pods as a bar of state proportions (large clusters).
fn mix_bar(c: &[usize; 5]) -> Html {
    let total: usize = c.iter().sum();
    let n = total.max(1);
    let states = [
        PodState::Ready,
        PodState::NotReady,
        PodState::Pending,
        PodState::Terminating,
        PodState::Failed,
    ];
    let text = states
        .iter()
        .filter(|s| c[**s as usize] > 0)
        .map(|s| format!("{} {}", c[*s as usize], s.name()))
        .collect::<Vec<_>>()
        .join(", ");
    html! {
        <div class="mix" data-testid="node-mix" role="img" aria-label={format!("{total} pods: {text}")} title={text.clone()}>
            { for states.iter().filter(|s| c[**s as usize] > 0).map(|s| html! {
                <span class={classes!("seg", s.class())} style={format!("width:{:.3}%", 100.0 * c[*s as usize] as f64 / n as f64)}></span>
            }) }
            <span class="mix-count">{ total }</span>
        </div>
    }
}

/// A slice's endpoints as proportions of ready, serving-terminating and not ready (large Services).
fn return_mix(s: &SliceView) -> Html {
    let n = s.endpoints.len().max(1);
    let ready = s.endpoints.iter().filter(|e| e.ready).count();
    let serving = s.endpoints.iter().filter(|e| !e.ready && e.serving).count();
    let rest = s.endpoints.len() - ready - serving;
    let seg = |k: usize, class: &'static str| html! { <span class={classes!("seg", class)} style={format!("width:{:.3}%", 100.0 * k as f64 / n as f64)}></span> };
    html! {
        <div class="mix" title={format!("{ready} ready, {serving} serving and terminating, {rest} not ready")}>
            { seg(ready, "ready") }{ seg(serving, "terminating") }{ seg(rest, "notready") }
        </div>
    }
}

fn legacy_card(v: &ServiceView) -> Html {
    let Some(e) = &v.endpoints else {
        return html! {};
    };
    let total = e.ready + e.not_ready;
    html! {
        <div class={classes!("legacy", e.over_capacity.then_some("over"))} data-testid="legacy-endpoints" data-addresses={total.to_string()}>
            <h3>{ format!("Endpoints {} (legacy, one object)", v.name) }</h3>
            <div class="bar" role="img" aria-label={format!("{total} of at most 1000 addresses")}>
                <div class="fill" style={format!("width:{:.3}%", 100.0 * total.min(1000) as f64 / 1000.0)}></div>
            </div>
            <p>{ format!("{} ready, {} not ready addresses (at most 1000)", e.ready, e.not_ready) }</p>
            { if e.over_capacity { html! { <p class="warn">{"Truncated to 1000: annotated endpoints.kubernetes.io/over-capacity: truncated. The EndpointSlices hold them all."}</p> } } else { html! {} } }
        </div>
    }
}

/// A small diagram of this node's recent connections: client → backend, coloured by outcome.
fn proxy_flow(pv: &ProxyView, conns: &[&slicelab_core::sim::view::ConnView]) -> Html {
    let mut backends: Vec<String> = Vec::new();
    for c in conns.iter().rev() {
        let b = if c.backend.is_empty() {
            "(none)".to_string()
        } else {
            c.backend.clone()
        };
        if !backends.contains(&b) && backends.len() < 12 {
            backends.push(b);
        }
    }
    slicelab_core::sort::all(&mut backends);
    let h = 24.0 * backends.len().max(1) as f64 + 16.0;
    let y_of = |b: &str| 20.0 + 24.0 * backends.iter().position(|x| x == b).unwrap_or(0) as f64;
    let counts = {
        let mut c = [0usize; 4];
        for x in conns {
            c[x.outcome.index()] += 1;
        }
        c
    };
    html! {
        <div class="flow">
            <p class="flow-counts" data-testid="flow-counts">
                { for ConnOutcome::ALL.iter().map(|o| html! { <span class={classes!("outcome", outcome_class(*o))}>{ format!("{} {}", counts[o.index()], o.name()) }</span> }) }
                <span class="muted">{" in the last second through this node"}</span>
            </p>
            <svg viewBox={format!("0 0 600 {h}")} class="flow-svg" role="img" aria-label={format!("recent connections from {}", pv.node)}>
                <circle cx="40" cy={format!("{}", h / 2.0)} r="14" class="client" />
                <text x="40" y={format!("{}", h / 2.0 + 30.0)} text-anchor="middle" class="svg-label">{"clients"}</text>
                { for conns.iter().rev().take(40).map(|c| {
                    let b = if c.backend.is_empty() { "(none)".to_string() } else { c.backend.clone() };
                    let y = y_of(&b);
                    html! { <line x1="56" y1={format!("{}", h / 2.0)} x2="420" y2={format!("{y}")} class={classes!("conn", outcome_class(c.outcome))} /> }
                }) }
                { for backends.iter().map(|b| html! {
                    <g>
                        <rect x="424" y={format!("{}", y_of(b) - 9.0)} width="170" height="18" rx="4" class="backend" />
                        <text x="432" y={format!("{}", y_of(b) + 4.0)} class="svg-label">{ b.clone() }</text>
                    </g>
                }) }
            </svg>
        </div>
    }
}

fn outcome_class(o: ConnOutcome) -> &'static str {
    match o {
        ConnOutcome::Served => "served",
        ConnOutcome::Refused => "refused",
        ConnOutcome::TimedOut => "timedout",
        ConnOutcome::Reset => "reset",
    }
}
