//! A node behind a home router, with real network address translation:
//! network namespaces joined by veth pairs, the router masquerading the
//! home network and dropping what nobody inside asked for.
//!
//! ```text
//!  this namespace ("the internet")     router namespace         home namespace
//!  validator, provider 1, provider 2   10.213.77.2 ─ MASQUERADE ─ 192.168.213.1
//!  on 10.213.77.1 ───────── veth ──────┘                             │ veth
//!                                                          provider 3 on 192.168.213.2
//! ```
//!
//! Provider 3 learns it is behind NAT (AutoNAT), reserves slots on relays
//! (the public nodes relay once they find themselves reachable), stores
//! pieces of a site like any member, and serves them to the other side
//! when it is their only holder; when its relays die it moves to another;
//! a node that reaches it through a relay gets a direct connection by hole
//! punching (DCUtR).
//!
//! Needs root (`ip netns`, `iptables`): without it the test says so and
//! passes, unless `PEERCLOUD_NETNS=required` (as `.ci/run` sets).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use peercloud_api::StatusView;
use peercloud_devnet::{Devnet, UpOptions, init, node_dir};
use peercloud_node::config::{CONFIG_FILE, Settings};
use peercloud_types::Keypair;

/// The test's bound.
const LIMIT: Duration = Duration::from_secs(240);
/// How long a node may take to find out how reachable it is and to get a
/// relay's reservation.
const NAT_WAIT: Duration = Duration::from_secs(60);
const PUBLIC_IP: &str = "10.213.77.1";
const ROUTER_IP: &str = "10.213.77.2";
const ROUTER_HOME_IP: &str = "192.168.213.1";
const HOME_IP: &str = "192.168.213.2";
const PROVIDERS: usize = 3;
/// The provider behind the NAT.
const HOME: usize = 3;

/// The namespaces and links of one run; dropping it removes them (and the
/// links and routes with them).
struct Lab {
    router: String,
    home: String,
    outside: String,
}

impl Lab {
    fn build() -> Result<Lab, String> {
        Lab::remove_leftovers();
        let id = std::process::id() % 100_000;
        let lab = Lab {
            router: format!("pcr{id}"),
            home: format!("pch{id}"),
            outside: format!("pcu{id}"),
        };
        let wan = format!("pcw{id}");
        let lan = format!("pcl{id}");
        let inside = format!("pci{id}");
        let (r, h) = (lab.router.as_str(), lab.home.as_str());
        let nets = |ns: &str, args: &[&str]| {
            let mut full = vec!["netns", "exec", ns];
            full.extend_from_slice(args);
            full.into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        let steps: Vec<Vec<String>> = vec![
            words(&format!("netns add {r}")),
            words(&format!("netns add {h}")),
            words(&format!(
                "link add {} type veth peer name {wan} netns {r}",
                lab.outside
            )),
            words(&format!(
                "link add {lan} netns {r} type veth peer name {inside} netns {h}"
            )),
            words(&format!("addr add {PUBLIC_IP}/24 dev {}", lab.outside)),
            words(&format!("link set {} up", lab.outside)),
            nets(
                r,
                &words_ref(&format!("ip addr add {ROUTER_IP}/24 dev {wan}")),
            ),
            nets(
                r,
                &words_ref(&format!("ip addr add {ROUTER_HOME_IP}/24 dev {lan}")),
            ),
            nets(r, &words_ref(&format!("ip link set {wan} up"))),
            nets(r, &words_ref(&format!("ip link set {lan} up"))),
            nets(r, &words_ref("ip link set lo up")),
            nets(
                h,
                &words_ref(&format!("ip addr add {HOME_IP}/24 dev {inside}")),
            ),
            nets(h, &words_ref(&format!("ip link set {inside} up"))),
            nets(h, &words_ref("ip link set lo up")),
            nets(
                h,
                &words_ref(&format!("ip route add default via {ROUTER_HOME_IP}")),
            ),
            // The home network's addresses lead to the router (which drops
            // what nobody inside asked for), never out of this machine.
            words(&format!("route add 192.168.213.0/24 via {ROUTER_IP}")),
        ];
        // Created before the first step, so a failed build removes what it made.
        for step in steps {
            run("ip", &step)?;
        }
        let iptables = |rule: &str| {
            let mut args = vec![
                "netns".to_owned(),
                "exec".into(),
                r.into(),
                "iptables".into(),
            ];
            args.extend(words(rule));
            run("ip", &args)
        };
        run(
            "ip",
            &nets(r, &words_ref("sysctl -q -w net.ipv4.ip_forward=1")),
        )?;
        iptables(&format!(
            "-t nat -A POSTROUTING -s 192.168.213.0/24 -o {wan} -j MASQUERADE"
        ))?;
        iptables(&format!(
            "-A FORWARD -i {wan} -o {lan} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
        ))?;
        iptables(&format!("-A FORWARD -i {wan} -o {lan} -j DROP"))?;
        // Like a home router: what nobody inside asked for is dropped, not
        // refused, on the router's own address too (a refusal would end a
        // hole punch's first packet before the other side's crossed it).
        iptables(&format!(
            "-A INPUT -i {wan} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
        ))?;
        iptables(&format!("-A INPUT -i {wan} -j DROP"))?;
        Ok(lab)
    }
}

impl Lab {
    /// Namespaces and links a run that was killed left behind (their
    /// addresses and routes would clash with this run's).
    fn remove_leftovers() {
        let listed = |args: &[&str]| -> Vec<String> {
            Command::new("ip")
                .args(args)
                .output()
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
                .unwrap_or_default()
                .lines()
                .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
                .collect()
        };
        for ns in listed(&["netns", "list"]) {
            if ns.starts_with("pcr") || ns.starts_with("pch") {
                let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            }
        }
        // `3: pcu123@if2: <...>`: the second field is the name.
        let links = Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default();
        for name in links
            .lines()
            .filter_map(|line| line.split(": ").nth(1))
            .filter_map(|name| name.split('@').next())
            .filter(|name| name.starts_with("pcu"))
        {
            let _ = Command::new("ip").args(["link", "del", name]).output();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.home, &self.router] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.outside])
            .output();
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn words_ref(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

fn run(program: &str, args: &[String]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Node `i`'s status, asked with the CLI from inside its namespace when it
/// has one (its API is on that namespace's loopback).
fn status(dir: &Path, i: usize, netns: Option<&str>) -> StatusView {
    let exe = env!("CARGO_BIN_EXE_peercloud");
    let node = node_dir(dir, i);
    let node = path_text(&node);
    let args = ["--node-dir", node, "node", "status", "--json"];
    let out = match netns {
        Some(ns) => Command::new("ip")
            .args(["netns", "exec", ns, exe])
            .args(args)
            .output(),
        None => Command::new(exe).args(args).output(),
    }
    .expect("peercloud runs");
    let value = json_of(&format!("node-{i} status"), &out);
    serde_json::from_value(value).expect("a status view")
}

/// Polls node `i`'s status until `done` holds, for at most [`NAT_WAIT`].
fn wait_status(
    dir: &Path,
    i: usize,
    netns: Option<&str>,
    what: &str,
    done: impl Fn(&StatusView) -> bool,
) -> StatusView {
    let deadline = Instant::now() + NAT_WAIT;
    loop {
        let view = status(dir, i, netns);
        if done(&view) {
            return view;
        }
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(node_dir(dir, i).join("node.log")).unwrap_or_default();
            let nat_lines: Vec<&str> = log
                .lines()
                .filter(|l| {
                    ["autonat", "relay", "dcutr", "reachab"]
                        .iter()
                        .any(|w| l.contains(w))
                })
                .collect();
            panic!(
                "node-{i}: {what} within {} s; last status: {:?}; its NAT log:\n{}",
                NAT_WAIT.as_secs(),
                view.nat,
                nat_lines[nat_lines.len().saturating_sub(40)..].join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_node_behind_nat_is_reached_through_relays_stores_and_serves_and_moves_when_its_relay_dies() {
    let lab = match Lab::build() {
        Ok(lab) => lab,
        Err(why) if std::env::var("PEERCLOUD_NETNS").as_deref() != Ok("required") => {
            println!("skipped: network namespaces are not available here ({why})");
            return;
        }
        Err(why) => panic!("network namespaces are required: {why}"),
    };
    bounded("nat", LIMIT, move || {
        let root = tempfile::tempdir().expect("a temporary directory");
        let user_dir = root.path().join("user");
        std::fs::create_dir_all(&user_dir).expect("the user's directory");
        let user = Keypair::generate();
        user.save(&user_dir.join("wallet.key")).expect("the wallet");
        let dir = root.path().join("devnet");
        init(&dir, PROVIDERS, &user.account_id()).expect("devnet init");
        for i in 0..=PROVIDERS {
            let ip = if i == HOME { HOME_IP } else { PUBLIC_IP };
            let file = node_dir(&dir, i).join(CONFIG_FILE);
            let mut settings = Settings::load(&file).expect("the node's config");
            settings.listen = Some(vec![
                format!("/ip4/{ip}/tcp/0"),
                format!("/ip4/{ip}/udp/0/quic-v1"),
            ]);
            settings.private_network = Some(true);
            settings.save(&file).expect("saving the node's config");
        }
        let options = UpOptions {
            exe: PathBuf::from(env!("CARGO_BIN_EXE_peercloud")),
            env: Vec::new(),
            log: Some("info,libp2p_relay=debug,libp2p_autonat=debug,libp2p_dcutr=debug".into()),
            netns: vec![(HOME, lab.home.clone())],
        };
        let mut devnet = Devnet::up(&dir, PROVIDERS, &options).expect("the devnet comes up");
        let home_ns = Some(lab.home.as_str());

        // The public nodes find they are reachable and relay; the home node
        // finds it is not and takes reservations.
        for i in 0..HOME {
            let view = wait_status(&dir, i, None, "reachable and relaying", |v| {
                v.nat.reachability == "public" && v.nat.relaying
            });
            assert!(
                view.nat
                    .public_addr
                    .as_deref()
                    .is_some_and(|a| a.contains(PUBLIC_IP)),
                "{:?}",
                view.nat
            );
        }
        let home = wait_status(&dir, HOME, home_ns, "behind NAT with a relay", |v| {
            v.nat.reachability == "private" && !v.nat.relays.is_empty()
        });
        assert!(
            home.nat
                .relayed_addrs
                .iter()
                .all(|a| a.contains("/p2p-circuit") && a.contains(PUBLIC_IP)),
            "relayed addresses go through the public side: {:?}",
            home.nat.relayed_addrs
        );
        println!(
            "checked: the home node is private, relayed by {:?}",
            home.nat.relays
        );

        // A site deployed through provider 1 is stored on every provider
        // (3 replicas on 3), the home node included.
        let site = root.path().join("site");
        std::fs::create_dir_all(&site).expect("the site folder");
        std::fs::write(site.join("index.html"), "<h1>from home</h1>").expect("index.html");
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        std::fs::write(site.join("big.bin"), &big).expect("big.bin");
        let cli = |args: &[&str]| {
            let node = node_dir(&dir, 1);
            let mut full = vec![
                "--data-dir",
                path_text(&user_dir),
                "--node-dir",
                path_text(&node),
            ];
            full.extend_from_slice(args);
            peercloud(&full)
        };
        let cluster = devnet.cluster.to_string();
        let created = json_of(
            "bucket create --public",
            &cli(&[
                "bucket",
                "create",
                &cluster,
                "--public",
                "--deposit",
                "5",
                "--json",
            ]),
        );
        let bucket = created["bucket"].as_str().expect("a bucket").to_owned();
        let deployed = json_of(
            "site deploy",
            &cli(&[
                "site",
                "deploy",
                path_text(&site),
                "--bucket",
                &bucket,
                "--json",
            ]),
        );
        assert_eq!(deployed["uploaded"], 2, "{deployed}");

        // Providers 1 and 2 die: the home node is the only holder left, and
        // at least one of its relays is gone.
        let before: Vec<String> = home.nat.relays.clone();
        let validator_peer = status(&dir, 0, None).peer;
        for i in [1, 2] {
            devnet.nodes[i].kill();
        }
        let hex = bucket.trim_start_matches("bucket:");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        // `path` of the site through node `i`'s web gateway: answered 200.
        let site_get = |i: usize, path: &str| {
            let web = std::fs::read_to_string(node_dir(&dir, i).join("web.addr"))
                .unwrap_or_else(|e| panic!("node {i}'s web.addr: {e}"));
            let answer = http
                .get(format!("{}/{hex}/{path}", web.trim()))
                .send()
                .unwrap_or_else(|e| panic!("node {i} answers {path:?}: {e}"));
            assert_eq!(answer.status(), 200, "node {i}, {path:?}");
            answer
        };
        let page = site_get(0, "");
        assert_eq!(page.text().expect("the page"), "<h1>from home</h1>");
        let fetched = site_get(0, "big.bin");
        assert!(fetched.bytes().expect("the file").as_ref() == big.as_slice());
        println!("checked: with its other holders dead, the site is served from the home node");

        // Its reservations move to the relay still alive.
        let after = wait_status(
            &dir,
            HOME,
            home_ns,
            "a reservation on the live relay only",
            |v| v.nat.relays == [validator_peer.clone()],
        );
        assert!(
            after
                .nat
                .relayed_addrs
                .iter()
                .all(|a| a.contains(&validator_peer)),
            "{:?}",
            after.nat.relayed_addrs
        );
        println!(
            "checked: relays {before:?} -> {:?} after providers 1 and 2 died",
            after.nat.relays
        );

        // Provider 1 comes back on new ports (so the home node cannot dial
        // it first at an address it remembers) and knows the home node only
        // by its relayed address: its site reads reach it through the
        // relay, and DCUtR makes the connection direct: both sides dial each
        // other at once, and the home router lets the answer to its own
        // outgoing packet in.
        std::fs::remove_file(node_dir(&dir, 1).join(peercloud_node::daemon::LISTEN_FILE))
            .expect("provider 1's p2p.listen");
        devnet.restart(1, &options).expect("provider 1 restarts");
        site_get(1, "");
        let punched = |v: &StatusView| v.nat.hole_punches > 0;
        let deadline = Instant::now() + NAT_WAIT;
        let (mut home_view, mut back_view) = (status(&dir, HOME, home_ns), status(&dir, 1, None));
        while !punched(&home_view) && !punched(&back_view) {
            assert!(
                Instant::now() < deadline,
                "no hole punched within {} s: home {:?}, provider 1 {:?}",
                NAT_WAIT.as_secs(),
                home_view.nat,
                back_view.nat
            );
            std::thread::sleep(Duration::from_millis(500));
            home_view = status(&dir, HOME, home_ns);
            back_view = status(&dir, 1, None);
        }
        println!(
            "checked: a relayed connection turned direct (home: {} punched, {} failed; provider 1: {} punched, {} failed)",
            home_view.nat.hole_punches,
            home_view.nat.hole_punch_failures,
            back_view.nat.hole_punches,
            back_view.nat.hole_punch_failures
        );
        devnet.stop();
    });
}
