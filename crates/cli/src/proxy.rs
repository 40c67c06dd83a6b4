//! `slicelab proxy ...`

pub fn run(args: &[String]) -> Result<String, String> {
    Err(format!("proxy: not built yet ({} arguments)", args.len()))
}
