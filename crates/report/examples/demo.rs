//! Render the demo report (synthetic data, labelled as such) into a directory:
//! `cargo run -p nullprint-report --example demo -- OUT_DIR [--force]`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: demo OUT_DIR [--force]")?;
    let force = args.any(|a| a == "--force");
    let written = report::write_report(&dir, &report::demo::demo_report(), force)?;
    eprintln!("wrote {} files to {dir}", written.len());
    Ok(())
}
