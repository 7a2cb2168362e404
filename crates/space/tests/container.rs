//! Container spaces on the real Docker engine: what runs in them, what they
//! cannot do, files in and out, and each limit breached for real (memory,
//! processes, disk) while the engine and other spaces carry on.
//!
//! They need a running Docker engine: without one they say they were
//! skipped, unless `PEERCLOUD_DOCKER=required` (CI sets it), when they fail.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use peercloud_space::{ContainerEngine, PIDS_MAX, Space, SpaceLimits, SpaceState};
use peercloud_types::Resources;

const WAIT: Duration = Duration::from_secs(30);

fn limits() -> SpaceLimits {
    SpaceLimits::from_resources(&Resources {
        cpu_millicores: 500,
        memory_bytes: 32 << 20,
        storage_bytes: 8 << 20,
        ..Resources::default()
    })
    .unwrap()
}

/// The engine, or `None` (the test is skipped) when there is none and it
/// is not required.
async fn engine() -> Option<ContainerEngine> {
    match ContainerEngine::connect().await {
        Ok(engine) => Some(engine),
        Err(error) if std::env::var("PEERCLOUD_DOCKER").as_deref() == Ok("required") => {
            panic!("PEERCLOUD_DOCKER=required and {error}")
        }
        Err(error) => {
            eprintln!("skipped: {error}");
            None
        }
    }
}

/// A fresh space named for the test (a leftover of an earlier run removed first).
async fn fresh(engine: &ContainerEngine, name: &str) -> Space {
    for old in engine.list().await.unwrap() {
        if old.name == name {
            engine.remove(&old).await.unwrap();
        }
    }
    engine
        .create(name, &limits(), "pc1testowner")
        .await
        .unwrap()
}

async fn sh(engine: &ContainerEngine, space: &Space, script: &str) -> (i64, String, String) {
    let command = ["sh".to_owned(), "-c".to_owned(), script.to_owned()];
    let out = engine.exec(space, &command, None, WAIT).await.unwrap();
    (
        out.exit_code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_space_runs_as_nobody_without_network_privileges_or_a_writable_root() {
    let Some(engine) = engine().await else {
        return;
    };
    let space = fresh(&engine, "test-confined").await;
    assert_eq!(engine.state(&space).await.unwrap(), SpaceState::Running);
    let (code, out, _) = sh(&engine, &space, "id -u; id -g; echo $PEERCLOUD_OWNER").await;
    assert_eq!((code, out.as_str()), (0, "65534\n65534\npc1testowner\n"));
    // Only the loopback interface: no network in or out.
    let (_, interfaces, _) = sh(&engine, &space, "ls /sys/class/net").await;
    assert_eq!(interfaces.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    // The root is read-only; /data and /tmp are writable.
    let (code, _, err) = sh(&engine, &space, "touch /x").await;
    assert_ne!(code, 0);
    assert!(err.contains("Read-only"), "{err}");
    let (code, _, _) = sh(&engine, &space, "echo hi > /data/a && echo hi > /tmp/b").await;
    assert_eq!(code, 0);
    // Standard input reaches the command; its exit code comes back.
    let command = [
        "sh".to_owned(),
        "-c".to_owned(),
        "cat > /data/in; wc -c < /data/in; exit 3".to_owned(),
    ];
    let out = engine
        .exec(&space, &command, Some(b"twelve bytes"), WAIT)
        .await
        .unwrap();
    assert_eq!(out.exit_code, 3);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "12");
    engine.remove(&space).await.unwrap();
    assert_eq!(engine.state(&space).await.unwrap(), SpaceState::Missing);
}

#[tokio::test]
async fn files_copy_in_and_out_of_data() {
    let Some(engine) = engine().await else {
        return;
    };
    let space = fresh(&engine, "test-files").await;
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    engine.upload(&space, "blob.bin", &bytes).await.unwrap();
    let (code, out, _) = sh(&engine, &space, "wc -c < /data/blob.bin").await;
    assert_eq!((code, out.trim()), (0, "100000"));
    assert_eq!(
        engine.download(&space, "blob.bin", 1 << 20).await.unwrap(),
        bytes
    );
    // Too large for the caller's bound, absent, or not a plain name.
    assert!(engine.download(&space, "blob.bin", 1_000).await.is_err());
    assert!(engine.download(&space, "absent", 1 << 20).await.is_err());
    assert!(engine.upload(&space, "../etc/passwd", b"x").await.is_err());
    engine.remove(&space).await.unwrap();
}

#[tokio::test]
async fn limits_hold_memory_processes_and_disk_and_the_space_survives() {
    let Some(engine) = engine().await else {
        return;
    };
    let space = fresh(&engine, "test-limits").await;
    let other = fresh(&engine, "test-bystander").await;
    // Memory: a process that takes 200 MB of a 44 MB cgroup is killed (137).
    let (code, _, _) = sh(
        &engine,
        &space,
        "head -c 200000000 /dev/zero | tail > /dev/null",
    )
    .await;
    assert_ne!(code, 0, "the memory hog was not stopped");
    // Disk: /data holds 8 MiB, writing 16 MiB fails with no space left.
    let (code, _, err) = sh(
        &engine,
        &space,
        "dd if=/dev/zero of=/data/big bs=1M count=16",
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("No space left"), "{err}");
    let (_, used, _) = sh(&engine, &space, "rm /data/big; echo gone").await;
    assert_eq!(used.trim(), "gone");
    // Processes: a fork bomb runs into the pids limit and stays under it,
    // while the neighbour space still runs commands.
    // Each process started stays (a sleep): forks fail once the limit is hit.
    let bomb = "i=0; while [ $i -lt 400 ]; do sleep 30 & i=$((i+1)); done 2>/dev/null";
    let command = ["sh".to_owned(), "-c".to_owned(), bomb.to_owned()];
    let _ = engine
        .exec(&space, &command, None, Duration::from_secs(2))
        .await;
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(engine.processes(&space).await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        most > u64::from(PIDS_MAX) / 2,
        "the bomb never grew ({most} processes)"
    );
    assert!(
        most <= u64::from(PIDS_MAX),
        "{most} processes under a limit of {PIDS_MAX}"
    );
    let (code, out, _) = sh(&engine, &other, "echo alive").await;
    assert_eq!((code, out.trim()), (0, "alive"));
    assert_eq!(
        engine.processes(&other).await.unwrap(),
        2,
        "only the neighbour's own init and its sleep"
    );
    engine.remove(&space).await.unwrap();
    engine.remove(&other).await.unwrap();
}

#[tokio::test]
async fn a_bad_name_is_refused_before_the_engine_sees_it() {
    let Some(engine) = engine().await else {
        return;
    };
    let error = engine
        .create("no/slashes", &limits(), "pc1x")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("not a plain file name"),
        "{error}"
    );
}
