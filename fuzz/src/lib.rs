//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! The property every decoder of the canonical encoding must keep: whatever
//! [`decode`] accepts re-encodes to exactly the bytes it was given (one value,
//! one byte form), and those bytes decode again to an equal value.

use std::any::type_name;
use std::fmt::Debug;
use std::sync::OnceLock;

use peercloud_types::JobSpec;
use peercloud_types::encoding::{Versioned, decode, encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Whether `PEERCLOUD_FUZZ_VERBOSE` is set: the targets then print which type
/// accepted an input (handy to check that a seed decodes as meant).
pub fn verbose() -> bool {
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("PEERCLOUD_FUZZ_VERBOSE").is_some())
}

/// Decodes `bytes` as `T`; when that succeeds, asserts the canonical-encoding
/// properties and returns the value.
pub fn canonical<T>(bytes: &[u8]) -> Option<T>
where
    T: Versioned + Serialize + DeserializeOwned + PartialEq + Debug,
{
    let value = decode::<T>(bytes).ok()?;
    if verbose() {
        eprintln!("accepted as {}", type_name::<T>());
    }
    let again = encode(&value);
    assert!(
        again == bytes,
        "{}: decode accepted bytes that are not the canonical form of what they decode to\n input: {bytes:02x?}\n canonical: {again:02x?}",
        type_name::<T>()
    );
    same_after_round_trip(&value);
    Some(value)
}

/// Asserts that `value` (typically a part of a decoded record) encodes to
/// bytes that decode back to an equal value.
pub fn same_after_round_trip<T>(value: &T)
where
    T: Versioned + Serialize + DeserializeOwned + PartialEq + Debug,
{
    let bytes = encode(value);
    match decode::<T>(&bytes) {
        Ok(back) => assert_eq!(
            &back,
            value,
            "{}: value changed across encode/decode",
            type_name::<T>()
        ),
        Err(e) => panic!(
            "{}: its own encoding does not decode: {e}\n value: {value:?}\n bytes: {bytes:02x?}",
            type_name::<T>()
        ),
    }
}

/// The checks for a job spec that arrived in its canonical encoding inside a
/// peer's message (`CapacityRequest`, `Dispatch`). Decoding does not validate:
/// the receiving node calls `validate` next and refuses what fails. So:
/// - the spec round-trips through its canonical encoding, and hashing it
///   (what is compared with the posted digest) does not panic;
/// - `validate` does not panic, and a refusal renders;
/// - a spec that validates is also a spec a user could have written: its JSON
///   parses back through `JobSpec::from_json` (which validates) to an equal
///   spec with the same digest.
pub fn check_peer_spec(spec: &JobSpec) {
    same_after_round_trip(spec);
    let digest = spec.digest();
    match spec.validate() {
        Ok(()) => {
            if verbose() {
                eprintln!("  spec validates");
            }
            let json = serde_json::to_string(spec).expect("a spec serialises to JSON");
            match JobSpec::from_json(&json) {
                Ok(back) => {
                    assert_eq!(
                        &back, spec,
                        "a valid spec changed across JSON\n json: {json}"
                    );
                    assert_eq!(back.digest(), digest, "digest changed across JSON");
                }
                Err(error) => panic!(
                    "a spec that validates is refused as JSON: {error}\n spec: {spec:?}\n json: {json}"
                ),
            }
        }
        Err(error) => {
            if verbose() {
                eprintln!("  spec refused: {error}");
            }
            let _ = error.to_string();
        }
    }
}
