//! `slicelab`: the native command line of Slicelab.

mod endpoints;
mod proxy;
mod reconcile;
mod run;

use std::process::ExitCode;

const USAGE: &str = "usage:
  slicelab reconcile CASE.json      run the EndpointSlice reconciler on an oracle case, print the result as JSON
  slicelab endpoints CASE.json      print the legacy Endpoints object for the same inputs
  slicelab proxy categorize CASE.json
  slicelab proxy rules --mode iptables|nftables|ipvs --node NAME FILE...
  slicelab run --list | slicelab run ID [--seed S] [--until 10m] [--actions FILE] [--trace OUT.jsonl]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("reconcile") => reconcile::run(&args[1..]),
        Some("endpoints") => endpoints::run(&args[1..]),
        Some("proxy") => proxy::run(&args[1..]),
        Some("run") => run::run(&args[1..]),
        Some("-h") | Some("--help") | Some("help") => Ok(format!("{USAGE}\n")),
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("slicelab: {e}");
            ExitCode::from(2)
        }
    }
}
