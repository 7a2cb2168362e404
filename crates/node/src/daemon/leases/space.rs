//! A provider's spaces: made for the leases this node won, stopped when a
//! lease ends, removed after the grace; the user's signed commands and the
//! probers' echoes they answer; the probe reports this node bills with.

use std::sync::Arc;
use std::time::Duration;

use peercloud_api::ErrorCode;
use peercloud_ledger::{LeaseRecord, LeaseStatus};
use peercloud_space::{Space, SpaceLimits, lease_space_name};
use peercloud_types::{AccountId, LeaseId, LeaseProbe, NodeId, Signed, SpaceCommand};

use super::{SPACE_GRACE_MS, lock};
use crate::daemon::{Inner, now_ms};
use crate::wire::Message;

/// Longest a user's command may run before its answer is given up.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a probe's echo may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// A signed command is refused when it is valid for longer than this.
const COMMAND_VALIDITY_MAX_MS: u64 = 5 * 60_000;

/// Whether `record`'s space should run now: awarded, not over, not ended.
pub(super) fn should_run(record: &LeaseRecord, now: u64) -> bool {
    match record.status {
        LeaseStatus::Pending => now <= record.activate_by_ms,
        LeaseStatus::Active { .. } => record.end_ms().is_some_and(|end| now < end),
        _ => false,
    }
}

/// When the space of an ended lease goes: its end (or, never activated,
/// its activation deadline) plus the grace.
pub(super) fn removal_ms(record: &LeaseRecord) -> u64 {
    record
        .end_ms()
        .unwrap_or(record.activate_by_ms)
        .saturating_add(SPACE_GRACE_MS)
}

/// Creates the space of `lease` (this node won it).
pub(super) async fn create(inner: &Arc<Inner>, lease: LeaseId, record: &LeaseRecord) {
    let Some(engine) = &inner.leases.engine else {
        return;
    };
    let limits = match SpaceLimits::from_resources(&record.resources) {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%lease, %error, "lease cannot have a space");
            return;
        }
    };
    let owner = record.user.to_string();
    match engine
        .create(&lease_space_name(&lease), &limits, &owner)
        .await
    {
        Ok(space) => {
            tracing::info!(%lease, user = %record.user, "space ready");
            lock(&inner.leases.spaces).insert(lease, space);
        }
        Err(error) => tracing::warn!(%lease, %error, "space not created"),
    }
}

/// Stops or removes `lease`'s space as its lease's end and grace say.
pub(super) async fn retire(inner: &Arc<Inner>, lease: LeaseId, space: Space, remove: bool) {
    let Some(engine) = &inner.leases.engine else {
        return;
    };
    let done = if remove {
        engine.remove(&space).await
    } else {
        engine.stop(&space).await
    };
    match done {
        Ok(()) if remove => {
            lock(&inner.leases.spaces).remove(&lease);
            tracing::info!(%lease, "space removed");
        }
        Ok(()) => {}
        Err(error) => tracing::warn!(%lease, %error, "space not retired"),
    }
}

fn running_space(
    inner: &Inner,
    lease: &LeaseId,
) -> Result<(LeaseRecord, Space), (ErrorCode, String)> {
    let record = inner
        .chain()
        .state()
        .lease(lease)
        .cloned()
        .ok_or((ErrorCode::NotFound, format!("{lease} is not on the ledger")))?;
    if record.node != inner.node_id() {
        return Err((ErrorCode::NotFound, format!("{lease} is not this node's")));
    }
    if !should_run(&record, now_ms()) {
        return Err((
            ErrorCode::NotFound,
            format!(
                "{lease} is {} and its space is not running",
                record.status.name()
            ),
        ));
    }
    let space = lock(&inner.leases.spaces).get(lease).cloned().ok_or((
        ErrorCode::Unavailable,
        format!("the space of {lease} is not ready yet"),
    ))?;
    Ok((record, space))
}

/// A command's result on the wire (its output already bounded by the engine).
fn output(out: peercloud_space::ExecOutput) -> Message {
    Message::SpaceOutput {
        exit_code: out.exit_code,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// Runs a user's signed command in its lease's space, once.
pub(crate) async fn on_space_command(inner: &Arc<Inner>, signed: Signed<SpaceCommand>) -> Message {
    if signed.verify().is_err() {
        return Message::error(
            ErrorCode::BadSignature,
            "the command's signature does not hold",
        );
    }
    let command = &signed.body;
    let (record, space) = match running_space(inner, &command.lease) {
        Ok(found) => found,
        Err((code, message)) => return Message::error(code, message),
    };
    if AccountId(signed.signer) != record.user {
        return Message::error(
            ErrorCode::NotOwner,
            format!(
                "only {}, the lease's user, may run commands in its space",
                record.user
            ),
        );
    }
    let now = now_ms();
    if command.valid_until_ms < now || command.valid_until_ms > now + COMMAND_VALIDITY_MAX_MS {
        return Message::error(
            ErrorCode::BadRequest,
            format!(
                "the command is valid until {} ms: it must be within the next {COMMAND_VALIDITY_MAX_MS} ms",
                command.valid_until_ms
            ),
        );
    }
    if command.command.is_empty() {
        return Message::error(ErrorCode::BadRequest, "the command is empty");
    }
    // Before activation (before it is paid for) a space answers only the
    // access check: an echo.
    let access_check = command.command.len() == 2 && command.command[0] == "echo";
    if record.status == peercloud_ledger::LeaseStatus::Pending && !access_check {
        return Message::error(
            ErrorCode::BadRequest,
            format!(
                "{} is not active yet: until it is, its space only echoes (the access check)",
                command.lease
            ),
        );
    }
    {
        let mut seen = lock(&inner.leases.commands);
        seen.retain(|_, until| *until >= now);
        if seen
            .insert((command.lease, command.nonce), command.valid_until_ms)
            .is_some()
        {
            return Message::error(ErrorCode::BadRequest, "this command was run already");
        }
    }
    let Some(engine) = &inner.leases.engine else {
        return Message::error(ErrorCode::Unavailable, "this node has no container engine");
    };
    let stdin = (!command.stdin.is_empty()).then_some(command.stdin.as_slice());
    match engine
        .exec(&space, &command.command, stdin, COMMAND_TIMEOUT)
        .await
    {
        Ok(out) => output(out),
        Err(error) => Message::error(ErrorCode::RunFailed, error.to_string()),
    }
}

/// Echoes a prober's nonce through the space of `lease` (the path a user's
/// commands take): the prober sees the space up only if it answers. Only
/// the lease's probers are answered (anyone else would just load the space).
pub(crate) async fn on_probe(
    inner: &Arc<Inner>,
    prober: Option<NodeId>,
    lease: LeaseId,
    nonce: u64,
) -> Message {
    let Some(prober) = prober else {
        return Message::error(ErrorCode::NotOwner, "a probe from a peer that is no node");
    };
    let is_prober = {
        let chain = inner.chain();
        let state = chain.state();
        let owner = state.node(&inner.node_id()).map(|n| n.owner);
        owner.is_some_and(|owner| {
            super::upkeep::lease_probers(state, &lease, &owner).contains(&prober)
        })
    };
    if !is_prober {
        return Message::error(
            ErrorCode::NotOwner,
            format!("node {prober} is not a prober of {lease}"),
        );
    }
    let (_, space) = match running_space(inner, &lease) {
        Ok(found) => found,
        Err((code, message)) => return Message::error(code, message),
    };
    let Some(engine) = &inner.leases.engine else {
        return Message::error(ErrorCode::Unavailable, "this node has no container engine");
    };
    let command = ["echo".to_owned(), nonce.to_string()];
    match engine.exec(&space, &command, None, PROBE_TIMEOUT).await {
        Ok(out) => output(out),
        Err(error) => Message::error(ErrorCode::Unavailable, error.to_string()),
    }
}

/// Keeps a prober's signed observation of one of this node's leases, for
/// the bill of its period.
pub(crate) fn on_probe_report(inner: &Inner, probe: Signed<LeaseProbe>) -> Message {
    let body = probe.body;
    if probe.signer != *body.prober.key() || probe.verify().is_err() {
        return Message::error(ErrorCode::BadSignature, "a probe not signed by its prober");
    }
    // Only the lease's probers, for a period that has begun: anything else
    // would never be paid for, and one refused probe refuses a whole bill.
    let refusal = {
        let chain = inner.chain();
        let state = chain.state();
        let me = inner.node_id();
        match (state.lease(&body.lease), state.node(&me)) {
            (Some(lease), Some(node)) if lease.node == me => {
                let begun = lease
                    .period_span(body.period)
                    .is_some_and(|(start, _)| start <= now_ms());
                if !super::upkeep::lease_probers(state, &body.lease, &node.owner)
                    .contains(&body.prober)
                {
                    Some(format!(
                        "node {} is not a prober of {}",
                        body.prober, body.lease
                    ))
                } else if !begun {
                    Some(format!(
                        "period {} of {} has not begun",
                        body.period, body.lease
                    ))
                } else {
                    None
                }
            }
            _ => Some(format!("{} is not this node's", body.lease)),
        }
    };
    if let Some(reason) = refusal {
        return Message::error(ErrorCode::NotFound, reason);
    }
    let mut probes = lock(&inner.leases.probes);
    let period = probes
        .entry(body.lease)
        .or_default()
        .entry(body.period)
        .or_default();
    if !period.iter().any(|p| p.body.prober == body.prober) {
        period.push(probe);
    }
    Message::Ack
}
