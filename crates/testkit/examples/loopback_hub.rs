//! Serve files over the loopback hub for benchmarks and manual checks:
//! `loopback_hub [--latency-ms N] [--rate-mbps N] PATH=FILE...` serves each FILE under PATH,
//! prints the base URL on stdout, then runs until killed.

use std::time::Duration;

fn main() {
    let server = testkit::hub::Server::start();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--latency-ms" => {
                let ms: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--latency-ms N");
                server.latency(Duration::from_millis(ms));
            }
            "--rate-mbps" => {
                let mb: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rate-mbps N");
                server.rate(mb * 1_000_000);
            }
            spec => {
                let (path, file) = spec.split_once('=').expect("PATH=FILE");
                server.file(path, file);
            }
        }
    }
    println!("{}", server.url());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
