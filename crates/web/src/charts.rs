//! Charts drawn with plotters on canvases: endpoints and slices over time, API writes per controller
//! sync, connections per second by outcome, requests per Pod, and the bytes sent to watchers by the
//! legacy Endpoints object against EndpointSlices.

use plotters::prelude::*;
use slicelab_core::sim::Sim;
use web_sys::HtmlCanvasElement;
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

struct Palette {
    fg: RGBColor,
    grid: RGBColor,
    /// The card behind the chart: every redraw paints it first (plotters does not clear).
    bg: RGBColor,
}

fn palette(canvas: &HtmlCanvasElement) -> Palette {
    let dark = canvas.closest("[data-theme=dark]").ok().flatten().is_some()
        || (canvas.closest("[data-theme=auto]").ok().flatten().is_some()
            && web_sys::window()
                .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
                .is_some_and(|m| m.matches()));
    if dark {
        Palette {
            fg: RGBColor(220, 222, 230),
            grid: RGBColor(60, 64, 76),
            bg: RGBColor(29, 32, 39),
        }
    } else {
        Palette {
            fg: RGBColor(40, 42, 50),
            grid: RGBColor(222, 224, 230),
            bg: RGBColor(255, 255, 255),
        }
    }
}

// Okabe–Ito, safe for colour-blind readers.
const BLUE: RGBColor = RGBColor(0, 114, 178);
const GREEN: RGBColor = RGBColor(0, 158, 115);
const ORANGE: RGBColor = RGBColor(230, 159, 0);
const VERMILLION: RGBColor = RGBColor(213, 94, 0);
const PURPLE: RGBColor = RGBColor(204, 121, 167);
const SKY: RGBColor = RGBColor(86, 180, 233);

/// The canvas behind `r`, cleared, and the colours of its theme.
mod canvas {
    use plotters::prelude::DrawingBackend;
    use plotters_backend::{
        BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
    };
    use plotters_canvas::CanvasBackend;
    use web_sys::HtmlCanvasElement;

    /// plotters-canvas with one change: text is measured with the canvas's own `measureText`. The
    /// default measures by putting the text in the page and reading its size, which forces the browser
    /// to lay out the whole page (with a thousand Pods on it, the longest part of a frame).
    pub struct Canvas {
        inner: CanvasBackend,
        context: web_sys::CanvasRenderingContext2d,
    }

    impl Canvas {
        pub fn new(canvas: HtmlCanvasElement) -> Option<Canvas> {
            use wasm_bindgen::JsCast;
            let context = canvas.get_context("2d").ok()??.dyn_into().ok()?;
            Some(Canvas {
                inner: CanvasBackend::with_canvas_object(canvas)?,
                context,
            })
        }
    }

    type Drawn = Result<(), DrawingErrorKind<<CanvasBackend as DrawingBackend>::ErrorType>>;

    impl DrawingBackend for Canvas {
        type ErrorType = <CanvasBackend as DrawingBackend>::ErrorType;

        fn get_size(&self) -> (u32, u32) {
            self.inner.get_size()
        }
        fn ensure_prepared(&mut self) -> Drawn {
            self.inner.ensure_prepared()
        }
        fn present(&mut self) -> Drawn {
            self.inner.present()
        }
        fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Drawn {
            self.inner.draw_pixel(point, color)
        }
        fn draw_line<S: BackendStyle>(
            &mut self,
            from: BackendCoord,
            to: BackendCoord,
            style: &S,
        ) -> Drawn {
            self.inner.draw_line(from, to, style)
        }
        fn draw_rect<S: BackendStyle>(
            &mut self,
            ul: BackendCoord,
            br: BackendCoord,
            style: &S,
            fill: bool,
        ) -> Drawn {
            self.inner.draw_rect(ul, br, style, fill)
        }
        fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            path: I,
            style: &S,
        ) -> Drawn {
            self.inner.draw_path(path, style)
        }
        fn draw_circle<S: BackendStyle>(
            &mut self,
            c: BackendCoord,
            r: u32,
            style: &S,
            fill: bool,
        ) -> Drawn {
            self.inner.draw_circle(c, r, style, fill)
        }
        fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            vert: I,
            style: &S,
        ) -> Drawn {
            self.inner.fill_polygon(vert, style)
        }
        fn draw_text<T: BackendTextStyle>(
            &mut self,
            text: &str,
            style: &T,
            pos: BackendCoord,
        ) -> Drawn {
            self.inner.draw_text(text, style, pos)
        }
        fn estimate_text_size<T: BackendTextStyle>(
            &self,
            text: &str,
            style: &T,
        ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
            self.context.set_font(&format!(
                "{} {}px {}",
                style.style().as_str(),
                style.size(),
                style.family().as_str()
            ));
            let width = self
                .context
                .measure_text(text)
                .map(|m| m.width())
                .unwrap_or(0.0);
            // The line box the page would give the text.
            Ok((width.ceil() as u32, (style.size() * 1.2).ceil() as u32))
        }
        fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Drawn {
            self.inner.blit_bitmap(pos, size, src)
        }
    }
}
use canvas::Canvas;

fn area(r: &NodeRef) -> Option<(DrawingArea<Canvas, plotters::coord::Shift>, Palette)> {
    let canvas = r.cast::<HtmlCanvasElement>()?;
    let pal = palette(&canvas);
    let root = Canvas::new(canvas)?.into_drawing_area();
    let _ = root.fill(&pal.bg);
    Some((root, pal))
}

type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn lines(r: &NodeRef, title: &str, series: &[Series], x_label: &str) {
    let Some((root, pal)) = area(r) else {
        return;
    };
    let xmax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let ymax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.1;
    let chart = ChartBuilder::on(&root)
        .margin(8)
        .margin_right(18)
        .caption(title, ("sans-serif", 13).into_font().color(&pal.fg))
        .x_label_area_size(38)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..xmax, 0.0..ymax);
    let Ok(mut chart) = chart else { return };
    let _ = chart
        .configure_mesh()
        .light_line_style(pal.grid)
        .bold_line_style(pal.grid)
        .axis_style(pal.fg)
        .label_style(("sans-serif", 11).into_font().color(&pal.fg))
        .x_desc(x_label)
        .x_labels(6)
        .y_labels(5)
        .draw();
    for (name, color, pts) in series {
        if let Ok(s) =
            chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
        {
            let c = *color;
            s.label(*name).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2))
            });
        }
    }
    let _ = chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 11).into_font().color(&pal.fg))
        .background_style(TRANSPARENT)
        .border_style(TRANSPARENT)
        .draw();
    let _ = root.present();
}

fn bars(r: &NodeRef, title: &str, values: &[u64]) {
    let Some((root, pal)) = area(r) else {
        return;
    };
    let n = values.len().max(1);
    let ymax = values.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let Ok(mut chart) = ChartBuilder::on(&root)
        .margin(8)
        .margin_right(18)
        .caption(title, ("sans-serif", 13).into_font().color(&pal.fg))
        .x_label_area_size(38)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..n as f64, 0.0..ymax)
    else {
        return;
    };
    let _ = chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(pal.grid)
        .bold_line_style(pal.grid)
        .axis_style(pal.fg)
        .label_style(("sans-serif", 11).into_font().color(&pal.fg))
        .x_desc("Pods, busiest first")
        .y_labels(5)
        .draw();
    let _ = chart.draw_series(values.iter().enumerate().map(|(i, v)| {
        Rectangle::new(
            [(i as f64 + 0.1, 0.0), (i as f64 + 0.9, *v as f64)],
            BLUE.filled(),
        )
    }));
    let _ = root.present();
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
