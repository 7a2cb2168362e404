//! The site benchmark: requests per second for one 10 KiB page of a public
//! bucket, served by one node's web gateway (a grid of three in-process
//! providers, the page put through another node), measured with `wrk` from
//! loopback, next to nginx serving the same file on the same machine (the
//! ceiling for HTTP on this box). The gateway keeps a key's lookup for a
//! second and a small object's bytes by manifest, so most requests are
//! answered from memory; the rest are a quorum read of the page's index
//! entry and a verified read of its chunk.
//!
//! Run: `cargo bench -p peercloud-devnet --bench site`. Needs `wrk`
//! (Debian's package); nginx (`nginx-light`) is measured when installed.
//! Prints medians of [`RUNS`] runs of [`RUN_SECS`] s each.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use peercloud_client::bucket::{self, NewObject};
use peercloud_devnet::Grid;

#[path = "../tests/common/mod.rs"]
mod common;

/// Providers of the grid.
const PROVIDERS: usize = 3;
/// The page's size: past the inline bound, so it is read from a holder.
const PAGE_BYTES: usize = 10 << 10;
/// wrk's threads and connections.
const WRK_THREADS: usize = 2;
const WRK_CONNECTIONS: usize = 16;
/// Seconds per run; runs per server.
const RUN_SECS: u64 = 5;
const RUNS: usize = 3;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// `wrk`'s requests per second against `url`, or why there is none.
fn wrk(url: &str) -> Result<f64, String> {
    let out = Command::new("wrk")
        .args([
            format!("-t{WRK_THREADS}"),
            format!("-c{WRK_CONNECTIONS}"),
            format!("-d{RUN_SECS}s"),
            url.to_owned(),
        ])
        .output()
        .map_err(|e| format!("wrk did not run ({e}); install it: apt-get install wrk"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(line) = text.lines().find(|l| l.contains("Non-2xx")) {
        return Err(format!("wrk saw errors: {line}"));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("wrk printed no rate: {text}"))
}

fn rates(url: &str) -> Result<Vec<f64>, String> {
    (0..RUNS).map(|_| wrk(url)).collect()
}

fn print(what: &str, rates: &[f64]) -> f64 {
    let m = median(rates.to_vec());
    println!(
        "{what}: {m:.0} requests/s median of {RUNS} runs ({}), wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{RUN_SECS}s",
        rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    m
}

/// nginx serving `dir` on a free loopback port, stopped when dropped.
struct Nginx(std::process::Child, u16);

impl Nginx {
    fn start(dir: &Path) -> Option<Nginx> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let conf = dir.join("nginx.conf");
        let root = dir.join("www");
        std::fs::write(
            &conf,
            format!(
                "worker_processes 2; pid {pid}; error_log stderr;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{ access_log off; server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
                pid = dir.join("nginx.pid").display(),
                root = root.display(),
            ),
        )
        .ok()?;
        let child = Command::new("nginx")
            .args([
                "-c",
                &conf.display().to_string(),
                "-p",
                &dir.display().to_string(),
            ])
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        std::thread::sleep(Duration::from_millis(300));
        Some(Nginx(child, port))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(&dir.path().join("grid"), PROVIDERS).expect("a grid");
    let user = grid.user().clone();
    let node = grid.node(1).expect("node 1");
    let site = common::new_bucket(&grid, &node, 50, true);
    let page = common::content(PAGE_BYTES, 10);
    let objects = [NewObject {
        key: "page.html",
        bytes: &page,
    }];
    bucket::put_many(&node, &user, &site, &objects).expect("the page");
    let web = common::inner(&grid, 2)
        .web_url
        .get()
        .cloned()
        .expect("node 2's web gateway");
    let url = format!("{web}/{}/page.html", site.0);
    let got = reqwest::blocking::get(&url)
        .expect("the page")
        .bytes()
        .expect("its bytes");
    assert_eq!(got.as_ref(), &page[..], "the gateway serves the page");

    let node_rate = match rates(&url) {
        Ok(r) => print("peercloud web gateway, 10 KiB page", &r),
        Err(why) => {
            println!("site bench: {why}");
            return;
        }
    };
    let www = dir.path().join("nginx").join("www");
    std::fs::create_dir_all(&www).expect("nginx's root");
    std::fs::write(www.join("page.html"), &page).expect("the page for nginx");
    match Nginx::start(&dir.path().join("nginx")) {
        Some(nginx) => match rates(&format!("http://127.0.0.1:{}/page.html", nginx.1)) {
            Ok(r) => {
                let ceiling = print("nginx, the same file (the ceiling)", &r);
                println!("gateway / nginx = {:.2}", node_rate / ceiling);
            }
            Err(why) => println!("nginx: {why}"),
        },
        None => println!("nginx: not installed (apt-get install nginx-light) — no ceiling"),
    }
}
