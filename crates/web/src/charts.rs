//! Charts drawn on canvases: endpoints and slices over time, API writes per controller sync,
//! connections per second by outcome, requests per Pod, and the bytes sent to watchers by the legacy
//! Endpoints object against EndpointSlices. Drawn with the canvas's own 2D API (axes with round
//! ticks, a grid, lines or bars, a legend): a charting library cost the wasm about 16 KB gzipped more.

use slicelab_core::sim::Sim;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};
use yew::prelude::*;

const W: u32 = 520;
const H: u32 = 220;

#[derive(Default)]
pub struct Refs {
    pub endpoints: NodeRef,
    pub writes: NodeRef,
    pub conns: NodeRef,
    pub per_pod: NodeRef,
    pub bytes: NodeRef,
}

impl Refs {
    pub fn view(&self) -> Html {
        let c = |r: &NodeRef, id: &str, label: &str| {
            html! {
                <figure class="chart">
                    <canvas ref={r.clone()} width={W.to_string()} height={H.to_string()} data-testid={format!("chart-{id}")} role="img" aria-label={label.to_string()}></canvas>
                    <figcaption>{ label.to_string() }</figcaption>
                </figure>
            }
        };
        html! {
            <div class="charts">
                { c(&self.endpoints, "endpoints", "Endpoints (all and ready) and slices over time") }
                { c(&self.writes, "writes", "API writes per EndpointSlice controller sync") }
                { c(&self.conns, "conns", "Connections per second: served, refused, timed out, reset") }
                { c(&self.per_pod, "per-pod", "Connections served per Pod (the 40 busiest)") }
                { c(&self.bytes, "bytes", "Bytes sent to watchers: one Endpoints object (as if every node watched it, as before EndpointSlices) against EndpointSlices") }
            </div>
        }
    }
}

/// A colour, written for the canvas as `rgb(r,g,b)`.
#[derive(Clone, Copy)]
struct Rgb(u8, u8, u8);

impl Rgb {
    fn css(self) -> String {
        format!("rgb({},{},{})", self.0, self.1, self.2)
    }
}

struct Palette {
    fg: Rgb,
    grid: Rgb,
    /// The card behind the chart: every redraw paints it first.
    bg: Rgb,
}

fn palette(canvas: &HtmlCanvasElement) -> Palette {
    let dark = canvas.closest("[data-theme=dark]").ok().flatten().is_some()
        || (canvas.closest("[data-theme=auto]").ok().flatten().is_some()
            && web_sys::window()
                .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
                .is_some_and(|m| m.matches()));
    if dark {
        Palette {
            fg: Rgb(220, 222, 230),
            grid: Rgb(60, 64, 76),
            bg: Rgb(29, 32, 39),
        }
    } else {
        Palette {
            fg: Rgb(40, 42, 50),
            grid: Rgb(222, 224, 230),
            bg: Rgb(255, 255, 255),
        }
    }
}

// Okabe–Ito, safe for colour-blind readers.
const BLUE: Rgb = Rgb(0, 114, 178);
const GREEN: Rgb = Rgb(0, 158, 115);
const ORANGE: Rgb = Rgb(230, 159, 0);
const VERMILLION: Rgb = Rgb(213, 94, 0);
const PURPLE: Rgb = Rgb(204, 121, 167);
const SKY: Rgb = Rgb(86, 180, 233);

/// A round step (1, 2 or 5 times a power of ten) that cuts `0..max` into about `n` parts.
fn nice_step(max: f64, n: usize) -> f64 {
    let raw = (max / n.max(1) as f64).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// A tick label: whole numbers without decimals, fractions with as many as the step needs.
fn tick_label(v: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else {
        let decimals = (-step.log10()).ceil().clamp(1.0, 6.0) as usize;
        format!("{v:.decimals$}")
    }
}

/// A chart's frame: the canvas cleared, title, axes, ticks and grid drawn; maps data to pixels.
struct Plot {
    ctx: CanvasRenderingContext2d,
    fg: Rgb,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    xmax: f64,
    ymax: f64,
}

const FONT: &str = "11px sans-serif";

impl Plot {
    /// `x_ticks == 0` draws no vertical grid lines (bars mark their own places).
    fn new(
        r: &NodeRef,
        title: &str,
        x_label: &str,
        xmax: f64,
        ymax: f64,
        x_ticks: usize,
    ) -> Option<Plot> {
        let canvas = r.cast::<HtmlCanvasElement>()?;
        let pal = palette(&canvas);
        let ctx: CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
        let (w, h) = (canvas.width() as f64, canvas.height() as f64);
        ctx.set_fill_style_str(&pal.bg.css());
        ctx.fill_rect(0.0, 0.0, w, h);
        let p = Plot {
            ctx,
            fg: pal.fg,
            left: 56.0,
            right: w - 18.0,
            top: 34.0,
            bottom: h - 46.0,
            xmax: xmax.max(1e-9),
            ymax: ymax.max(1e-9),
        };
        let ctx = &p.ctx;
        ctx.set_fill_style_str(&pal.fg.css());
        ctx.set_text_align("left");
        ctx.set_text_baseline("middle");
        ctx.set_font("bold 12px sans-serif");
        let _ = ctx.fill_text(title, 8.0, 16.0);
        ctx.set_font(FONT);
        ctx.set_text_align("center");
        ctx.set_text_baseline("alphabetic");
        let _ = ctx.fill_text(x_label, (p.left + p.right) / 2.0, h - 10.0);
        ctx.set_line_width(1.0);
        // Horizontal grid and y labels.
        let ystep = nice_step(p.ymax, 5);
        ctx.set_text_align("right");
        ctx.set_text_baseline("middle");
        let mut y = 0.0;
        while y <= p.ymax + ystep * 1e-9 {
            let py = p.py(y).round() + 0.5;
            p.line(p.left, py, p.right, py, pal.grid);
            let _ = ctx.fill_text(&tick_label(y, ystep), p.left - 6.0, py);
            y += ystep;
        }
        // Vertical grid and x labels.
        ctx.set_text_align("center");
        ctx.set_text_baseline("top");
        // Bars (no vertical grid) count Pods: whole steps only.
        let xstep = if x_ticks == 0 {
            nice_step(p.xmax, 5).max(1.0)
        } else {
            nice_step(p.xmax, x_ticks)
        };
        let mut x = 0.0;
        while x <= p.xmax + xstep * 1e-9 {
            let px = p.px(x).round() + 0.5;
            if x_ticks > 0 {
                p.line(px, p.top, px, p.bottom, pal.grid);
            }
            p.line(px, p.bottom, px, p.bottom + 4.0, pal.fg);
            let _ = ctx.fill_text(&tick_label(x, xstep), px, p.bottom + 7.0);
            x += xstep;
        }
        // Axes.
        p.line(p.left + 0.5, p.top, p.left + 0.5, p.bottom + 0.5, pal.fg);
        p.line(p.left, p.bottom + 0.5, p.right, p.bottom + 0.5, pal.fg);
        Some(p)
    }

    fn px(&self, x: f64) -> f64 {
        self.left + x / self.xmax * (self.right - self.left)
    }

    fn py(&self, y: f64) -> f64 {
        self.bottom - y / self.ymax * (self.bottom - self.top)
    }

    fn line(&self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb) {
        self.ctx.set_stroke_style_str(&color.css());
        self.ctx.begin_path();
        self.ctx.move_to(x0, y0);
        self.ctx.line_to(x1, y1);
        self.ctx.stroke();
    }

    /// A series as a line two pixels wide.
    fn series(&self, pts: &[(f64, f64)], color: Rgb) {
        let ctx = &self.ctx;
        ctx.set_stroke_style_str(&color.css());
        ctx.set_line_width(2.0);
        ctx.set_line_join("round");
        ctx.begin_path();
        for (i, &(x, y)) in pts.iter().enumerate() {
            if i == 0 {
                ctx.move_to(self.px(x), self.py(y));
            } else {
                ctx.line_to(self.px(x), self.py(y));
            }
        }
        ctx.stroke();
        ctx.set_line_width(1.0);
    }

    /// The legend, in the title's row at the right, clear of the data.
    fn legend(&self, entries: &[(&str, Rgb)]) {
        let ctx = &self.ctx;
        ctx.set_font(FONT);
        ctx.set_text_align("left");
        ctx.set_text_baseline("middle");
        let y = 16.0;
        let mut x = self.right;
        for (name, color) in entries.iter().rev() {
            let w = ctx.measure_text(name).map(|m| m.width()).unwrap_or(0.0);
            x -= w + 20.0;
            ctx.set_line_width(2.0);
            self.line(x, y, x + 14.0, y, *color);
            ctx.set_line_width(1.0);
            ctx.set_fill_style_str(&self.fg.css());
            let _ = ctx.fill_text(name, x + 18.0, y);
            x -= 12.0;
        }
    }
}

type Series<'a> = (&'a str, Rgb, Vec<(f64, f64)>);

fn lines(r: &NodeRef, title: &str, series: &[Series], x_label: &str) {
    let xmax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let ymax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.1;
    let Some(plot) = Plot::new(r, title, x_label, xmax, ymax, 6) else {
        return;
    };
    for (_, color, pts) in series {
        plot.series(pts, *color);
    }
    let entries: Vec<(&str, Rgb)> = series.iter().map(|s| (s.0, s.1)).collect();
    plot.legend(&entries);
}

fn bars(r: &NodeRef, title: &str, values: &[u64]) {
    let n = values.len().max(1);
    let ymax = values.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let Some(plot) = Plot::new(r, title, "Pods, busiest first", n as f64, ymax, 0) else {
        return;
    };
    plot.ctx.set_fill_style_str(&BLUE.css());
    for (i, v) in values.iter().enumerate() {
        let (x0, x1) = (plot.px(i as f64 + 0.1), plot.px(i as f64 + 0.9));
        let y = plot.py(*v as f64);
        plot.ctx.fill_rect(x0, y, x1 - x0, plot.bottom - y);
    }
}

/// How many charts there are.
pub const COUNT: usize = 5;

/// Draw every chart.
pub fn draw(r: &Refs, sim: &Sim) {
    for i in 0..COUNT {
        draw_one(r, sim, i);
    }
}

/// Draw chart `i` from the simulation's samples, log and traffic counters (one per frame while
/// playing, so no frame pays for all five).
pub fn draw_one(r: &Refs, sim: &Sim, i: usize) {
    let secs = |t: u64| t as f64 / 1000.0;
    let samples: Vec<_> = if i == 0 || i == 4 {
        sim.samples.iter().collect()
    } else {
        Vec::new()
    };
    match i {
        0 => lines(
            &r.endpoints,
            "endpoints and slices",
            &[
                (
                    "endpoints",
                    BLUE,
                    samples
                        .iter()
                        .map(|s| (secs(s.t), s.endpoints as f64))
                        .collect(),
                ),
                (
                    "ready",
                    GREEN,
                    samples
                        .iter()
                        .map(|s| (secs(s.t), s.ready_endpoints as f64))
                        .collect(),
                ),
                (
                    "slices ×10",
                    ORANGE,
                    samples
                        .iter()
                        .map(|s| (secs(s.t), s.slices as f64 * 10.0))
                        .collect(),
                ),
            ],
            "seconds",
        ),
        1 => {
            // Writes per sync: the controller's writes grouped by the time they were sent.
            let mut per_sync: Vec<(f64, f64)> = Vec::new();
            for e in sim
                .log
                .iter()
                .filter(|e| e.actor == "endpointslice-controller")
            {
                match per_sync.last_mut() {
                    Some(last) if last.0 == secs(e.t) => last.1 += 1.0,
                    _ => per_sync.push((secs(e.t), 1.0)),
                }
            }
            lines(
                &r.writes,
                "writes per sync",
                &[("slice writes", PURPLE, per_sync)],
                "seconds",
            );
        }
        2 => {
            let ps = &sim.traffic.stats.per_second;
            // Whole seconds only: the current one is still filling.
            let done = (sim.now / 1000) as usize;
            let col = |k: usize| -> Vec<(f64, f64)> {
                ps.iter()
                    .take(done)
                    .enumerate()
                    .map(|(i, c)| (i as f64, c[k] as f64))
                    .collect()
            };
            lines(
                &r.conns,
                "connections per second",
                &[
                    ("served", GREEN, col(0)),
                    ("refused", ORANGE, col(1)),
                    ("timed out", VERMILLION, col(2)),
                    ("reset", PURPLE, col(3)),
                ],
                "seconds",
            );
        }
        3 => {
            let mut per_pod: Vec<u64> = sim.traffic.stats.per_pod.values().copied().collect();
            slicelab_core::sort::by(&mut per_pod, |a, b| b.cmp(a));
            per_pod.truncate(40);
            bars(&r.per_pod, "served per Pod", &per_pod);
        }
        _ => lines(
            &r.bytes,
            "bytes to watchers (cumulative, MB)",
            &[
                (
                    "Endpoints",
                    VERMILLION,
                    samples
                        .iter()
                        .map(|s| (secs(s.t), s.endpoints_watch_bytes as f64 / 1e6))
                        .collect(),
                ),
                (
                    "EndpointSlices",
                    SKY,
                    samples
                        .iter()
                        .map(|s| (secs(s.t), s.slice_watch_bytes as f64 / 1e6))
                        .collect(),
                ),
            ],
            "seconds",
        ),
    }
}
