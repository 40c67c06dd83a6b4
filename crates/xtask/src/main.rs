//! `cargo xtask setup | serve | test | build`: the project's own set-up and test runner. Every tool
//! is installed only when missing (or at the wrong version), with a line of progress for each.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const TRUNK_VERSION: &str = "0.21.14";
const GECKODRIVER_VERSION: &str = "0.37.1";
const BINARYEN_VERSION: &str = "132";

fn root() -> PathBuf {
    // crates/xtask → the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn shared() -> PathBuf {
    root().join("..").join("shared")
}

fn say(msg: &str) {
    println!("[xtask] {msg}");
}

/// PATH with cargo's bin directory first, so freshly installed tools are found.
fn path_env() -> String {
    let home = env::var("HOME").unwrap_or_default();
    let cargo_bin = env::var("CARGO_HOME").map(|h| format!("{h}/bin")).unwrap_or_else(|_| format!("{home}/.cargo/bin"));
    let npm_bin = format!("{home}/.npm-global/bin");
    format!("{cargo_bin}:{npm_bin}:{}", env::var("PATH").unwrap_or_default())
}

fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("PATH", path_env()).current_dir(root());
    c
}

/// Run a command, streaming its output; true when it succeeded.
fn run(mut c: Command) -> bool {
    let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().to_string()).collect();
    say(&format!("$ {} {}", c.get_program().to_string_lossy(), args.join(" ")));
    matches!(c.status(), Ok(s) if s.success())
}

/// The first line a tool prints for `--version`, if it runs at all.
fn version_of(program: &str, arg: &str) -> Option<String> {
    let out = cmd(program).arg(arg).stderr(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").to_string())
}

fn which(program: &str) -> Option<PathBuf> {
    let out = cmd("sh").arg("-c").arg(format!("command -v {program}")).output().ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !p.is_empty()).then(|| PathBuf::from(p))
}

fn is_root() -> bool {
    cmd("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

struct Apt {
    updated: bool,
}

impl Apt {
    fn install(&mut self, packages: &[&str]) -> Result<(), String> {
        let sudo = if is_root() { None } else { which("sudo") };
        let base = |args: &[&str]| {
            let mut c = match &sudo {
                Some(s) => {
                    let mut c = cmd(&s.to_string_lossy());
                    c.arg("apt-get");
                    c
                }
                None => cmd("apt-get"),
            };
            c.env("DEBIAN_FRONTEND", "noninteractive").args(args);
            c
        };
        if !self.updated {
            if !run(base(&["update"])) {
                return Err("apt-get update failed".into());
            }
            self.updated = true;
        }
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        args.extend_from_slice(packages);
        if run(base(&args)) {
            Ok(())
        } else {
            Err(format!("apt-get install {} failed", packages.join(" ")))
        }
    }
}

/// The wasm-bindgen version pinned in Cargo.lock (the CLI must match it exactly).
fn locked_wasm_bindgen() -> String {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|v| v.trim().strip_prefix("version = \"")) {
                return v.trim_end_matches('"').to_string();
            }
        }
    }
    "0.2.130".to_string()
}

fn cargo_install(krate: &str, version: &str, locked: bool) -> Result<(), String> {
    let mut c = cmd("cargo");
    c.args(["install", krate, "--version", version]);
    if locked {
        c.arg("--locked");
    }
    if run(c) {
        Ok(())
    } else {
        Err(format!("cargo install {krate} {version} failed"))
    }
}

fn setup() -> Result<(), String> {
    let mut apt = Apt { updated: false };
    let installed = cmd("rustup").args(["target", "list", "--installed"]).output().map_err(|e| format!("rustup: {e}"))?;
    if String::from_utf8_lossy(&installed.stdout).contains("wasm32-unknown-unknown") {
        say("wasm32-unknown-unknown target: present");
    } else {
        say("wasm32-unknown-unknown target: installing");
        if !run({
            let mut c = cmd("rustup");
            c.args(["target", "add", "wasm32-unknown-unknown"]);
            c
        }) {
            return Err("rustup target add wasm32-unknown-unknown failed".into());
        }
    }
    let wb = locked_wasm_bindgen();
    match version_of("wasm-bindgen", "--version") {
        Some(v) if v.ends_with(&wb) => say(&format!("wasm-bindgen-cli {wb}: present")),
        other => {
            say(&format!("wasm-bindgen-cli {wb}: installing (found {other:?}; about 3 minutes)"));
            // Without --locked: its lock file pins a crate version the registry no longer has.
            cargo_install("wasm-bindgen-cli", &wb, false)?;
        }
    }
    if which("firefox-esr").or_else(|| which("firefox")).is_some() {
        say("Firefox: present");
    } else {
        say("Firefox ESR: installing");
        apt.install(&["firefox-esr"])?;
    }
    match version_of("geckodriver", "--version") {
        Some(v) if v.contains(GECKODRIVER_VERSION) => say(&format!("geckodriver {GECKODRIVER_VERSION}: present")),
        _ => {
            say(&format!("geckodriver {GECKODRIVER_VERSION}: installing (about 2 minutes)"));
            cargo_install("geckodriver", GECKODRIVER_VERSION, true)?;
        }
    }
    match version_of("trunk", "--version") {
        Some(v) if v.contains(TRUNK_VERSION) => say(&format!("trunk {TRUNK_VERSION}: present")),
        _ => {
            say(&format!("trunk {TRUNK_VERSION}: installing (about 8 minutes)"));
            cargo_install("trunk", TRUNK_VERSION, true)?;
        }
    }
    if which("npm").is_none() {
        say("node and npm: installing");
        apt.install(&["nodejs", "npm"])?;
    }
    match version_of("wasm-opt", "--version") {
        Some(v) if v.contains(&format!("version {BINARYEN_VERSION}")) => say(&format!("wasm-opt {BINARYEN_VERSION}: present")),
        _ => {
            say(&format!("wasm-opt (npm binaryen@{BINARYEN_VERSION}): installing"));
            if !run({
                let mut c = cmd("npm");
                c.args(["install", "-g", &format!("binaryen@{BINARYEN_VERSION}")]);
                c
            }) {
                return Err("npm install -g binaryen failed".into());
            }
        }
    }
    if which("chromium").is_some() {
        say("Chromium: present");
    } else {
        say("Chromium: installing");
        apt.install(&["chromium"])?;
    }
    if which("python3").is_some() {
        say("python3: present");
    } else {
        apt.install(&["python3"])?;
    }
    let e2e = root().join("tests").join("e2e");
    if e2e.join("package.json").exists() {
        if e2e.join("node_modules").join("playwright-core").exists() {
            say("playwright-core: present");
        } else {
            say("playwright-core: installing");
            let mut c = cmd("npm");
            c.current_dir(&e2e);
            if e2e.join("package-lock.json").exists() {
                c.arg("ci");
            } else {
                c.arg("install");
            }
            if !run(c) {
                return Err("npm install in tests/e2e failed".into());
            }
        }
    }
    say("setup done");
    Ok(())
}

/// compare.py's verdict, accepting only failures on cases whose recorded endpoint *content* varied in
/// every one of the real reconciler's runs (no deterministic implementation can match that one run).
fn conformance() -> Result<(), String> {
    let dir = shared().join("oracle").join("reconciler");
    let out = cmd("python3")
        .arg(shared().join("oracle").join("compare.py"))
        .arg("--run")
        .arg(format!("{} reconcile {{}}", root().join("target/release/slicelab").display()))
        .arg(&dir)
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    print!("{text}");
    let mut unexplained = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("FAIL ")) {
        let name = line[5..].split(' ').next().unwrap_or("").trim_end_matches(':').to_string();
        let case: serde_json::Value = std::fs::read_to_string(dir.join(&name))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let obs = &case["expected"]["observed"];
        let runs = obs["runs"].as_u64().unwrap_or(0);
        let random_content = runs > 1
            && obs["distinctIgnoringSliceAssignment"].as_u64() == Some(runs)
            && obs["endpointContentStable"].as_bool() == Some(false)
            && line.contains("endpoint contents");
        if random_content {
            say(&format!("{name}: the real reconciler wrote different endpoints in each of its {runs} runs; not comparable by content"));
        } else {
            unexplained.push(name);
        }
    }
    if text.lines().last().is_none_or(|l| !l.contains(" passed, ")) {
        return Err("compare.py did not finish".into());
    }
    if unexplained.is_empty() {
        Ok(())
    } else {
        Err(format!("oracle disagreements: {}", unexplained.join(", ")))
    }
}

fn native_sim_hash() -> Option<String> {
    let out = cmd(&root().join("target/release/slicelab").to_string_lossy())
        .args(["run", "scale-0-350-0", "--seed", "7", "--until", "3m"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().last()?.strip_prefix("trace hash: ").map(str::to_string)
}

fn test() -> Result<(), String> {
    setup()?;
    let mut results: Vec<(String, bool)> = Vec::new();
    let mut step = |name: &str, ok: bool| {
        say(&format!("{} {name}", if ok { "PASS" } else { "FAIL" }));
        results.push((name.to_string(), ok));
        ok
    };
    say("== native tests (core, cli, xtask)");
    let ok = run({
        let mut c = cmd("cargo");
        c.args(["test", "--workspace", "--exclude", "slicelab-web"]);
        c
    });
    step("native tests", ok);
    say("== the slicelab binary and the oracle conformance (compare.py)");
    let built = run({
        let mut c = cmd("cargo");
        c.args(["build", "--release", "-p", "slicelab-cli"]);
        c
    });
    let conf = built && conformance().map_err(|e| say(&e)).is_ok();
    step("oracle conformance", conf);
    say("== browser tests in headless Firefox");
    let gecko = which("geckodriver").map(|p| p.to_string_lossy().to_string()).unwrap_or_default();
    let hash = native_sim_hash().unwrap_or_default();
    let ok = run({
        let mut c = cmd("cargo");
        c.args(["test", "-p", "slicelab-web", "--target", "wasm32-unknown-unknown"])
            .env("GECKODRIVER", gecko)
            .env("SLICELAB_NATIVE_TRACE_HASH", hash);
        c
    });
    step("Firefox tests", ok);
    say("== the site builds (trunk, release)");
    let ok = run({
        let mut c = cmd("trunk");
        c.args(["build", "--release", "--offline"]);
        c
    });
    step("trunk release build", ok);
    let e2e = root().join("tests").join("e2e").join("run.mjs");
    if e2e.exists() {
        say("== end-to-end test in headless Chromium");
        let ok = run({
            let mut c = cmd("node");
            c.arg(e2e);
            c
        });
        step("end-to-end", ok);
    }
    let failed: Vec<&String> = results.iter().filter(|(_, ok)| !ok).map(|(n, _)| n).collect();
    let passed = results.len() - failed.len();
    if !failed.is_empty() {
        say(&format!("failed steps: {}", failed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
    }
    println!("{passed} passed, {} failed", failed.len());
    if failed.is_empty() {
        Ok(())
    } else {
        Err("some steps failed".into())
    }
}

fn serve() -> Result<(), String> {
    setup()?;
    say("serving on http://127.0.0.1:8080/ (Ctrl-C stops)");
    if run({
        let mut c = cmd("trunk");
        c.args(["serve", "--offline", "--release", "--address", "127.0.0.1", "--port", "8080"]);
        c
    }) {
        Ok(())
    } else {
        Err("trunk serve failed".into())
    }
}

fn build() -> Result<(), String> {
    setup()?;
    if run({
        let mut c = cmd("trunk");
        c.args(["build", "--release", "--offline"]);
        c
    }) {
        say("built into dist/");
        Ok(())
    } else {
        Err("trunk build failed".into())
    }
}

fn main() -> ExitCode {
    let arg = env::args().nth(1).unwrap_or_default();
    let r = match arg.as_str() {
        "setup" => setup(),
        "serve" => serve(),
        "test" => test(),
        "build" => build(),
        _ => Err("usage: cargo xtask setup | serve | test | build".into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[xtask] error: {e}");
            ExitCode::FAILURE
        }
    }
}
