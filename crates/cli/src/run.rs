//! `slicelab run`: a scenario headless, with a summary and the trace hash.

use std::io::Write;

use slicelab_core::sim::scenario::{parse_duration_ms, Scenario, TimedAction};
use slicelab_core::sim::Sim;

const USAGE: &str = "usage: slicelab run --list | slicelab run ID|FILE [--seed S] [--until 10m] [--actions FILE] [--trace OUT.jsonl]";

pub fn run(args: &[String]) -> Result<String, String> {
    if args.first().map(String::as_str) == Some("--list") {
        let mut out = String::new();
        for s in Scenario::builtin() {
            out.push_str(&format!("{} {}\n", s.id, s.title));
        }
        return Ok(out);
    }
    let mut it = args.iter();
    let id = it.next().ok_or_else(|| format!("run: missing scenario\n{USAGE}"))?;
    let (mut seed, mut until, mut actions_file, mut trace) = (None, 600_000u64, None, None);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("run: {a} needs a value"));
        match a.as_str() {
            "--seed" => seed = Some(val()?.parse::<u64>().map_err(|_| "run: --seed must be a whole number".to_string())?),
            "--until" => until = parse_duration_ms(val()?).map_err(|e| format!("run: --until: {e}"))?,
            "--actions" => actions_file = Some(val()?.clone()),
            "--trace" => trace = Some(val()?.clone()),
            other => return Err(format!("run: unknown option {other}\n{USAGE}")),
        }
    }
    let mut sc = match Scenario::by_id(id) {
        Some(s) => s,
        None if std::path::Path::new(id).exists() => {
            let text = std::fs::read_to_string(id).map_err(|e| format!("run: cannot read {id}: {e}"))?;
            Scenario::parse(&text).map_err(|e| format!("run: {id}: {e}"))?
        }
        None => return Err(format!("run: no scenario {id:?} (see `slicelab run --list`)")),
    };
    if let Some(s) = seed {
        sc.seed = s;
    }
    let extra: Vec<TimedAction> = match actions_file {
        None => Vec::new(),
        Some(f) => {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("run: cannot read {f}: {e}"))?;
            let v: serde_json::Value = if text.trim_start().starts_with('[') || text.trim_start().starts_with('{') {
                serde_json::from_str(&text).map_err(|e| format!("run: {f}: not valid JSON: {e}"))?
            } else {
                yaml_values(&text).map_err(|e| format!("run: {f}: {e}"))?
            };
            serde_json::from_value(v).map_err(|e| format!("run: {f}: not a list of timed actions: {e}"))?
        }
    };
    let mut sim = Sim::with_actions(&sc, &extra).map_err(|e| format!("run: {e}"))?;
    sim.run_until(until);
    if let Some(path) = trace {
        let mut f = std::fs::File::create(&path).map_err(|e| format!("run: cannot write {path}: {e}"))?;
        for e in &sim.log {
            let line = serde_json::to_string(e).map_err(|e| format!("run: {e}"))?;
            writeln!(f, "{line}").map_err(|e| format!("run: cannot write {path}: {e}"))?;
        }
    }
    let mut out = format!("scenario: {} (seed {})\n", sc.id, sc.seed);
    out.push_str(&sim.summary());
    if let Err(e) = sim.check_invariants() {
        out.push_str(&format!("invariant violated: {e}\n"));
    }
    out.push_str(&format!("trace hash: {:016x}\n", sim.trace_hash()));
    Ok(out)
}

fn yaml_values(text: &str) -> Result<serde_json::Value, String> {
    slicelab_core::input::parse_values(text).map(|v| serde_json::Value::Array(v)).map_err(|e| e.to_string())
}
