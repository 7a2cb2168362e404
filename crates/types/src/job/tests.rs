//! Tests of the job spec: parsing, bounds, errors that name the field, the
//! published schema.

use super::*;

const EXAMPLE: &str = r#"{
    "version": 1,
    "name": "count words",
    "module": "wordcount.wasm",
    "args": ["--top", "10"],
    "env": {"LANG": "C"},
    "inputs": [{"name": "book.txt", "source": "book.txt"}],
    "outputs": ["counts.json"],
    "resources": {"cpu_millicores": 1000, "memory_bytes": 268435456},
    "limits": {"fuel": 1000000000, "memory_bytes": 67108864, "wall_time_ms": 10000, "output_bytes": 1048576},
    "redundancy": 2,
    "max_price": "0.5",
    "constraints": {"locations": ["DE", "FR"], "min_reputation": 5000}
}"#;

#[test]
fn example_parses() {
    let spec = JobSpec::from_json(EXAMPLE).unwrap();
    assert_eq!(spec.redundancy, 2);
    assert_eq!(spec.max_price, "0.5".parse().unwrap());
    assert_eq!(spec.module, Source::Path("wordcount.wasm".into()));
    assert_eq!(spec.deadline_secs, 600);
    let back = JobSpec::from_json(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
    assert_eq!(back.digest(), spec.digest());
}

#[test]
fn a_cid_module_is_a_cid() {
    let cid = ContentId::of(b"module");
    let text = EXAMPLE.replace("\"wordcount.wasm\"", &format!("\"{cid}\""));
    assert_eq!(JobSpec::from_json(&text).unwrap().module, Source::Cid(cid));
}

fn field_of(err: SpecError) -> String {
    match err {
        SpecError::Json { path, .. } => path,
        SpecError::Invalid { field, .. } => field,
    }
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            EXAMPLE.replace("\"version\": 1", "\"version\": 2"),
            "version",
        ),
        (
            EXAMPLE.replace("\"redundancy\": 2", "\"redundancy\": 0"),
            "redundancy",
        ),
        (
            EXAMPLE.replace("\"redundancy\": 2", "\"redundancy\": \"two\""),
            "redundancy",
        ),
        (EXAMPLE.replace("\"0.5\"", "\"-3\""), "max_price"),
        (EXAMPLE.replace("\"0.5\"", "\"0\""), "max_price"),
        (
            EXAMPLE.replace("\"book.txt\", \"source\"", "\"../etc/passwd\", \"source\""),
            "inputs[0].name",
        ),
        (EXAMPLE.replace("\"counts.json\"", "\"a/b\""), "outputs[0]"),
        (
            EXAMPLE.replace("\"fuel\": 1000000000", "\"fuel\": 0"),
            "limits.fuel",
        ),
        (
            EXAMPLE.replace("\"wall_time_ms\": 10000", "\"wall_time_ms\": 0"),
            "limits.wall_time_ms",
        ),
        (
            EXAMPLE.replace("\"output_bytes\": 1048576", "\"output_bytes\": 0"),
            "limits.output_bytes",
        ),
        (
            EXAMPLE.replace(
                "\"output_bytes\": 1048576",
                "\"output_bytes\": 18446744073709551615",
            ),
            "limits.output_bytes",
        ),
        (
            EXAMPLE.replace("\"fuel\": 1000000000", "\"fuel\": 18446744073709551616"),
            "limits.fuel",
        ),
        (
            EXAMPLE.replace("\"memory_bytes\": 67108864", "\"memory_bytes\": 536870912"),
            "limits.memory_bytes",
        ),
        (
            EXAMPLE.replace("\"DE\"", "\"Germany\""),
            "constraints.locations[0]",
        ),
        (EXAMPLE.replace("\"LANG\"", "\"1LANG\""), "env.1LANG"),
        (
            EXAMPLE.replace("\"cpu_millicores\"", "\"cpus\""),
            "resources.cpus",
        ),
        (
            EXAMPLE.replace("\"name\": \"count words\",", "\"colour\": 1,"),
            "colour",
        ),
    ];
    for (text, field) in cases {
        let err = JobSpec::from_json(&text).expect_err(field);
        let shown = err.to_string();
        assert!(shown.contains(field), "{shown} should name {field}");
        assert_eq!(field_of(err), field);
    }
    let missing = EXAMPLE.replace("\"max_price\": \"0.5\",", "");
    assert!(
        JobSpec::from_json(&missing)
            .unwrap_err()
            .to_string()
            .contains("max_price")
    );
    let broken = JobSpec::from_json("{\"version\": 1,").unwrap_err();
    assert!(
        matches!(broken, SpecError::Json { line: 1, .. }),
        "{broken}"
    );
}

#[test]
fn a_number_beyond_u64_names_the_field_and_the_range() {
    let cases = [
        ("\"fuel\": 18446744073709551616", "limits.fuel", "more than"),
        ("\"fuel\": 1e30", "limits.fuel", "more than"),
        ("\"fuel\": -1", "limits.fuel", "negative"),
        ("\"fuel\": 1.5", "limits.fuel", "not a whole number"),
        (
            "\"fuel\": 1e9",
            "limits.fuel",
            "without a decimal point or exponent",
        ),
        ("\"fuel\": \"lots\"", "limits.fuel", "whole number"),
    ];
    for (fuel, field, why) in cases {
        let text = EXAMPLE.replace("\"fuel\": 1000000000", fuel);
        let err = JobSpec::from_json(&text).expect_err(fuel);
        let shown = err.to_string();
        assert!(shown.contains(&format!("`{field}`")), "{shown}");
        assert!(shown.contains(why), "{shown} should say {why:?}");
        assert!(
            shown.contains("a whole number from 0 to 18446744073709551615"),
            "{shown}"
        );
        assert!(!shown.contains("floating point"), "{shown}");
        assert_eq!(field_of(err), field);
    }
    let seed = EXAMPLE.replace("\"redundancy\": 2", "\"redundancy\": 2, \"seed\": -7");
    assert_eq!(field_of(JobSpec::from_json(&seed).unwrap_err()), "seed");
    let top = EXAMPLE.replace("\"fuel\": 1000000000", "\"fuel\": 18446744073709551615");
    assert_eq!(JobSpec::from_json(&top).unwrap().limits.fuel, u64::MAX);
}

#[test]
fn output_bytes_must_be_positive_and_bounded() {
    let with = |n: u64| {
        EXAMPLE.replace(
            "\"output_bytes\": 1048576",
            &format!("\"output_bytes\": {n}"),
        )
    };
    let zero = JobSpec::from_json(&with(0)).unwrap_err().to_string();
    assert!(zero.contains("`limits.output_bytes` is 0"), "{zero}");
    assert!(zero.contains("write its outputs"), "{zero}");
    let at_max = JobSpec::from_json(&with(OUTPUT_BYTES_MAX)).unwrap();
    assert_eq!(at_max.limits.output_bytes, OUTPUT_BYTES_MAX);
    for over in [OUTPUT_BYTES_MAX + 1, u64::MAX] {
        let shown = JobSpec::from_json(&with(over)).unwrap_err().to_string();
        assert!(
            shown.contains(&format!(
                "`limits.output_bytes` is {over}, allowed 1 to {OUTPUT_BYTES_MAX}"
            )),
            "{shown}"
        );
    }
    // The default fits the bounds it is checked against.
    let defaults = Limits::default();
    assert!((1..=OUTPUT_BYTES_MAX).contains(&defaults.output_bytes));
    assert!(defaults.memory_bytes <= MEMORY_BYTES_MAX);
    assert!(defaults.wall_time_ms <= WALL_TIME_MS_MAX);
}

#[test]
fn a_json_message_does_not_repeat_the_position() {
    let err = JobSpec::from_json(&EXAMPLE.replace("\"redundancy\": 2", "\"redundancy\": \"two\""))
        .unwrap_err();
    let SpecError::Json { message, .. } = &err else {
        panic!("expected a JSON error, got {err}");
    };
    assert!(!message.contains(" at line "), "{message}");
    assert!(message.contains("expected u8"), "{message}");
}

#[test]
fn published_schema_is_current() {
    let schema = serde_json::to_string_pretty(&JobSpec::json_schema()).unwrap() + "\n";
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/job-spec.schema.json"
    );
    if std::env::var_os("PEERCLOUD_BLESS").is_some() {
        std::fs::write(path, &schema).unwrap();
    }
    let published = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        published, schema,
        "run with PEERCLOUD_BLESS=1 to update {path}"
    );
}

#[test]
fn stdin_names_one_of_the_inputs() {
    let with_stdin = |name: &str| {
        EXAMPLE.replace(
            "\"outputs\": [",
            &format!("\"stdin\": {name:?}, \"outputs\": ["),
        )
    };
    let spec = JobSpec::from_json(&with_stdin("book.txt")).unwrap();
    assert_eq!(spec.stdin.as_deref(), Some("book.txt"));
    assert_eq!(JobSpec::from_json(EXAMPLE).unwrap().stdin, None, "optional");

    let err = JobSpec::from_json(&with_stdin("notes.txt")).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("`stdin`")
            && shown.contains("\"notes.txt\"")
            && shown.contains("\"book.txt\""),
        "{shown}"
    );
    assert_eq!(field_of(err), "stdin");
    let no_inputs = with_stdin("book.txt").replace(
        "\"inputs\": [{\"name\": \"book.txt\", \"source\": \"book.txt\"}],",
        "",
    );
    let shown = JobSpec::from_json(&no_inputs).unwrap_err().to_string();
    assert!(
        shown.contains("`stdin`") && shown.contains("no inputs"),
        "{shown}"
    );
}

#[test]
fn scratch_bytes_defaults_and_is_bounded() {
    assert_eq!(
        JobSpec::from_json(EXAMPLE).unwrap().limits.scratch_bytes,
        SCRATCH_BYTES_DEFAULT
    );
    let with = |n: u64| {
        EXAMPLE.replace(
            "\"output_bytes\": 1048576",
            &format!("\"output_bytes\": 1048576, \"scratch_bytes\": {n}"),
        )
    };
    assert_eq!(
        JobSpec::from_json(&with(0)).unwrap().limits.scratch_bytes,
        0
    );
    let at_max = JobSpec::from_json(&with(SCRATCH_BYTES_MAX)).unwrap();
    assert_eq!(at_max.limits.scratch_bytes, SCRATCH_BYTES_MAX);
    let err = JobSpec::from_json(&with(SCRATCH_BYTES_MAX + 1)).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("allowed 0 to {SCRATCH_BYTES_MAX}")),
        "{err}"
    );
    assert_eq!(field_of(err), "limits.scratch_bytes");
}

#[test]
fn the_new_fields_are_in_the_digest() {
    let spec = JobSpec::from_json(EXAMPLE).unwrap();
    let mut with_stdin = spec.clone();
    with_stdin.stdin = Some("book.txt".into());
    assert_ne!(spec.digest(), with_stdin.digest());
    let mut more_scratch = spec.clone();
    more_scratch.limits.scratch_bytes += 1;
    assert_ne!(spec.digest(), more_scratch.digest());
    let bytes = crate::encoding::encode(&with_stdin);
    assert_eq!(bytes[1], 2, "version 2 of the spec's encoding");
    assert_eq!(
        crate::encoding::decode::<JobSpec>(&bytes).unwrap(),
        with_stdin
    );
}
