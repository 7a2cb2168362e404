//! `peercloud node status`: who a running node is, its peers and
//! addresses, and whether peers can reach it (`GET /v1/status`): public,
//! or behind NAT and reached through which relays.

use std::path::Path;
use std::process::ExitCode;

use peercloud_api::StatusView;

use crate::node_api::{NodeArgs, explain};

/// Shows the status of the node `node` names; `data_dir_flag` only locates
/// the default node.
pub fn run(data_dir_flag: Option<&Path>, node: &NodeArgs, json: bool) -> anyhow::Result<ExitCode> {
    let view = node.connect(data_dir_flag)?.status().map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", render(&view));
    }
    Ok(ExitCode::SUCCESS)
}

/// The text form of a status view.
fn render(view: &StatusView) -> String {
    let mut lines = vec![
        format!("node        {} ({})", view.node, view.role),
        format!("owner       {}", view.owner),
        format!(
            "ledger      {}",
            view.height
                .map_or_else(|| "no block yet".to_owned(), |h| format!("height {h}"))
        ),
        format!(
            "registered  {}",
            if view.registered { "yes" } else { "not yet" }
        ),
        format!("peers       {}", view.peers),
    ];
    for addr in &view.p2p {
        lines.push(format!("p2p         {addr}"));
    }
    let nat = &view.nat;
    lines.push(match (nat.reachability.as_str(), &nat.public_addr) {
        ("public", Some(addr)) => format!("reachable   yes, at {addr}"),
        ("private", _) => format!(
            "reachable   no: behind NAT or a firewall; through {} relay{}",
            nat.relays.len(),
            if nat.relays.len() == 1 { "" } else { "s" }
        ),
        _ => "reachable   not known yet".to_owned(),
    });
    for addr in &nat.relayed_addrs {
        lines.push(format!("relayed     {addr}"));
    }
    if nat.relaying {
        lines.push("relaying    for peers behind NAT".to_owned());
    }
    if nat.hole_punches + nat.hole_punch_failures > 0 {
        lines.push(format!(
            "hole punch  {} direct, {} failed (relayed)",
            nat.hole_punches, nat.hole_punch_failures
        ));
    }
    let edge = &view.edge_cache;
    lines.push(format!(
        "edge cache  {} pieces, {} of {} bytes; {} hits, {} misses",
        edge.pieces, edge.bytes, edge.budget_bytes, edge.hits, edge.misses
    ));
    if let Some(web) = &view.web {
        lines.push(format!("web         {web}"));
    }
    if let Some(s3) = &view.s3 {
        lines.push(format!("s3          {s3}"));
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}
