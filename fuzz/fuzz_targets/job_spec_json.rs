//! `peercloud_types::JobSpec::from_json` on arbitrary UTF-8: the spec file a
//! user writes (`job run --local`, the CLI's job commands). Peers exchange
//! specs in their canonical encoding (wire_message, canonical_decode) and the
//! HTTP API reads them with serde_json inside its bodies (api_json).
//!
//! Properties of an accepted spec:
//! - it validates;
//! - serialising it to JSON (compact or pretty) and parsing that again gives
//!   an equal spec, and the JSON it serialises to is a fixed point;
//! - its canonical binary form (what `PostJob` commits to through `digest`)
//!   round-trips to an equal spec with the same digest.
//!
//! A refused spec's error must render without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peercloud_fuzz::{same_after_round_trip, verbose};
use peercloud_types::JobSpec;
use peercloud_types::encoding::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let spec = match JobSpec::from_json(text) {
        Ok(spec) => spec,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    if verbose() {
        eprintln!("accepted: {spec:?}");
    }
    if let Err(error) = spec.validate() {
        panic!("from_json accepted a spec that does not validate: {error}\n spec: {spec:?}");
    }

    let json = serde_json::to_string(&spec).expect("a spec serialises to JSON");
    let back = match JobSpec::from_json(&json) {
        Ok(back) => back,
        Err(error) => panic!("a spec's own JSON is refused: {error}\n json: {json}"),
    };
    assert_eq!(back, spec, "the spec changed across JSON\n json: {json}");
    let json_again = serde_json::to_string(&back).expect("a spec serialises to JSON");
    assert_eq!(json_again, json, "the spec's JSON is not a fixed point");

    let pretty = serde_json::to_string_pretty(&spec).expect("a spec serialises to JSON");
    match JobSpec::from_json(&pretty) {
        Ok(back) => assert_eq!(back, spec, "the spec changed across pretty JSON"),
        Err(error) => panic!("a spec's own pretty JSON is refused: {error}\n json: {pretty}"),
    }

    same_after_round_trip(&spec);
    let binary = decode::<JobSpec>(&encode(&spec)).expect("checked by same_after_round_trip");
    assert_eq!(
        binary.digest(),
        spec.digest(),
        "digest changed across the binary form"
    );
});
