//! `serde_json::from_str` on arbitrary UTF-8 for the request bodies a node's
//! HTTP API reads: `SubmitTx` (`POST /v1/tx`), `OffersRequest`
//! (`POST /v1/jobs/{id}/offers`) and `DispatchRequest`
//! (`POST /v1/jobs/{id}/dispatch`), from `peercloud_api`. Signed records in
//! them are `Canonical<T>` (hex of the canonical encoding), sealed keys
//! `HexBytes`, the spec a plain serde `JobSpec` (the node validates it after
//! parsing).
//!
//! Properties of an accepted body:
//! - serialising it and parsing that again gives an equal value (compared
//!   field by field, as the body types have no `PartialEq`), and the JSON it
//!   serialises to is a fixed point;
//! - what the node does next does not panic: the signed transaction verifies
//!   or not and hashes, and round-trips through its canonical encoding; the
//!   spec validates or not, and round-trips through its canonical encoding;
//! - a dispatch body becomes, per node, the `wire::Message::Dispatch` the node
//!   sends (built as the API's service builds it), and that message decodes
//!   on the other side to an equal message.
//!
//! Every input is tried as each of the three types (a body may satisfy
//! several: unknown fields are ignored).

#![no_main]

use std::any::type_name;
use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use peercloud_api::{DispatchRequest, NodeKeys, ObjectRef, OffersRequest, SubmitTx};
use peercloud_fuzz::{same_after_round_trip, verbose};
use peercloud_node::wire::{Dispatch, Message, SealedObject};
use peercloud_types::{Hash32, JobId, JobSpec};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parses `text` as `T`; when that succeeds, checks the JSON round trip with
/// `same` (field-by-field equality) and returns the value.
fn accepted<T>(text: &str, same: fn(&T, &T) -> bool) -> Option<T>
where
    T: Serialize + DeserializeOwned + Debug,
{
    let value = match serde_json::from_str::<T>(text) {
        Ok(value) => value,
        Err(error) => {
            let _ = error.to_string();
            return None;
        }
    };
    if verbose() {
        eprintln!("accepted as {}", type_name::<T>());
    }
    let json = serde_json::to_string(&value).expect("an accepted body serialises to JSON");
    let back = match serde_json::from_str::<T>(&json) {
        Ok(back) => back,
        Err(error) => panic!(
            "{}: its own JSON is refused: {error}\n value: {value:?}\n json: {json}",
            type_name::<T>()
        ),
    };
    assert!(
        same(&value, &back),
        "{}: the body changed across JSON\n value: {value:?}\n back: {back:?}\n json: {json}",
        type_name::<T>()
    );
    let again = serde_json::to_string(&back).expect("an accepted body serialises to JSON");
    assert_eq!(
        again,
        json,
        "{}: the body's JSON is not a fixed point",
        type_name::<T>()
    );
    Some(value)
}

fn same_submit(a: &SubmitTx, b: &SubmitTx) -> bool {
    a.tx == b.tx && a.wait == b.wait
}

fn same_offers(a: &OffersRequest, b: &OffersRequest) -> bool {
    a.spec == b.spec && a.window_ms == b.window_ms && a.enough == b.enough
}

fn same_keys(a: &NodeKeys, b: &NodeKeys) -> bool {
    a.node == b.node && a.module_key == b.module_key && a.input_keys == b.input_keys
}

fn same_dispatch(a: &DispatchRequest, b: &DispatchRequest) -> bool {
    a.spec == b.spec
        && a.module == b.module
        && a.inputs == b.inputs
        && a.nodes.len() == b.nodes.len()
        && a.nodes.iter().zip(&b.nodes).all(|(x, y)| same_keys(x, y))
}

/// What the node checks on a spec it read from a body.
fn check_spec(spec: &JobSpec) {
    same_after_round_trip(spec);
    let _ = spec.digest();
    if let Err(error) = spec.validate() {
        let _ = error.to_string();
    }
}

fn sealed(object: &ObjectRef, key: &[u8]) -> SealedObject {
    SealedObject {
        name: object.name.clone(),
        cid: object.cid,
        sealed_key: key.to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Some(body) = accepted::<SubmitTx>(text, same_submit) {
        let tx = &body.tx.0;
        same_after_round_trip(tx);
        let _ = tx.verify();
        let _ = tx.hash();
    }

    if let Some(body) = accepted::<OffersRequest>(text, same_offers) {
        check_spec(&body.spec);
    }

    if let Some(body) = accepted::<DispatchRequest>(text, same_dispatch) {
        check_spec(&body.spec);
        let job = JobId(Hash32::of(b"api_json"));
        for keys in &body.nodes {
            if keys.input_keys.len() != body.inputs.len() {
                // The service refuses the request.
                continue;
            }
            let message = Message::Dispatch(Dispatch {
                job,
                spec: body.spec.clone(),
                module: sealed(&body.module, &keys.module_key.0),
                inputs: body
                    .inputs
                    .iter()
                    .zip(&keys.input_keys)
                    .map(|(input, key)| sealed(input, &key.0))
                    .collect(),
            });
            let bytes = message.to_bytes();
            match Message::from_bytes(&bytes) {
                Ok(back) => assert_eq!(back, message, "a dispatch changed across the wire"),
                Err(error) => panic!(
                    "a dispatch built from an accepted API body does not decode: {error}\n message: {message:?}"
                ),
            }
        }
    }
});
