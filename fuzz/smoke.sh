#!/usr/bin/env bash
# Fuzz smoke run: every cargo-fuzz target for a short, bounded time.
#
#   fuzz/smoke.sh                 # 10 s per target, all targets
#   fuzz/smoke.sh 60              # 60 s per target
#   fuzz/smoke.sh 30 net_codec    # only some targets
#
# Installs cargo-fuzz (from crates.io) when it is missing, builds the targets
# once (the dev profile: about 3.5 min cold on 2 cores, see fuzz/Cargo.toml),
# then runs each one starting from the committed seeds (fuzz/seeds/<t>)
# plus whatever an earlier run found (fuzz/corpus/<t>, not committed).
# Exits non-zero if the build fails or any target crashes, fails an
# assertion, times out on one input or runs out of memory; the input is then
# in fuzz/artifacts/<target>/ and the run's full log, which says how to replay
# it, in fuzz/artifacts/smoke-<target>.log.
#
# Toolchain: the default is `-s none` (coverage-guided, no sanitizer). cargo
# fuzz then passes rustc only stable -C flags, so the project's stable
# toolchain is enough: no nightly, no RUSTC_BOOTSTRAP. The code under test is
# safe Rust (`unsafe_code = "forbid"` in every crate), so AddressSanitizer
# adds little here. To use it anyway: FUZZ_SANITIZER=address fuzz/smoke.sh
# (the script then sets RUSTC_BOOTSTRAP=1 on a stable toolchain for
# -Zsanitizer; expect a second full build).
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 10; the first argument wins)
#   FUZZ_BUILD      dev (default: `cargo fuzz ... --dev`, the quick cold build)
#                   | release (cargo fuzz's default: 13-18 min cold, up to 2x
#                   the executions per second, for long runs)
#   FUZZ_SANITIZER  none (default) | address | leak
#   FUZZ_NICE       niceness of the build and runs (default 10)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 30)
#   FUZZ_RSS_MB     memory limit of a run in MiB (default 2048)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

seconds=${1:-${FUZZ_SECONDS:-10}}
shift || true
all_targets=(canonical_decode net_codec wire_message bulk_frame job_spec_json api_json)
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi
build=${FUZZ_BUILD:-dev}
sanitizer=${FUZZ_SANITIZER:-none}
niceness=${FUZZ_NICE:-10}
timeout=${FUZZ_TIMEOUT:-30}
rss_mb=${FUZZ_RSS_MB:-2048}

case "$seconds" in
    ''|*[!0-9]*) echo "smoke.sh: seconds must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac
case "$build" in
    dev) build_flags=(--dev) ;;
    release) build_flags=() ;;
    *) echo "smoke.sh: FUZZ_BUILD must be dev or release, got '$build'" >&2; exit 2 ;;
esac

# (a) What is needed.
if ! command -v cargo >/dev/null 2>&1; then
    echo "smoke.sh: cargo is not on PATH (install Rust with rustup first)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    nice -n "$niceness" cargo install cargo-fuzz --locked
fi
if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
    echo "smoke.sh: libfuzzer-sys compiles libFuzzer (C++): install g++ (apt-get install g++)" >&2
    exit 2
fi
if [ "$sanitizer" != none ]; then
    # -Zsanitizer is unstable: fine on a nightly toolchain, or on stable with
    # RUSTC_BOOTSTRAP=1 (cargo fuzz then also treats the compiler as nightly).
    if ! rustc --version | grep -q -- '-nightly'; then
        export RUSTC_BOOTSTRAP=1
    fi
fi

# The fuzz workspace builds into fuzz/target whatever the caller's environment says.
export CARGO_TARGET_DIR="$here/target"
unset CARGO_BUILD_TARGET_DIR

echo "== $(cargo fuzz --version), $(rustc --version), build: $build, sanitizer: $sanitizer"

# (b) Build once, then run each target for a bounded time.
build_start=$(date +%s)
nice -n "$niceness" cargo fuzz build -s "$sanitizer" "${build_flags[@]}"
echo "== built in $(( $(date +%s) - build_start )) s"

failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    seed_dirs=()
    if [ -d "seeds/$target" ]; then
        seed_dirs=("seeds/$target")
    fi
    echo "== $target: ${seconds} s"
    # The first corpus directory receives new inputs; the seeds are only read.
    # libFuzzer's full output goes to the log; the console gets its summary lines.
    set +e
    nice -n "$niceness" cargo fuzz run -s "$sanitizer" "${build_flags[@]}" "$target" \
        "corpus/$target" "${seed_dirs[@]}" -- \
        -max_total_time="$seconds" \
        -timeout="$timeout" \
        -rss_limit_mb="$rss_mb" \
        -print_final_stats=1 \
        >"artifacts/smoke-$target.log" 2>&1
    status=$?
    set -e
    grep -E 'INITED|DONE|stat::number_of_executed_units|stat::peak_rss_mb' \
        "artifacts/smoke-$target.log" || true
    if [ "$status" -ne 0 ]; then
        echo "!! $target failed (exit $status); full log: fuzz/artifacts/smoke-$target.log" >&2
        grep -E -A3 'panicked at|ERROR: libFuzzer|SUMMARY|Failing input|Reproduce with' \
            "artifacts/smoke-$target.log" | head -40 >&2 || true
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "== FAILED: ${failed[*]}" >&2
    echo "   replay one input: (cd fuzz && cargo fuzz run -s $sanitizer ${build_flags[*]} <target> artifacts/<target>/<crash-file>)" >&2
    exit 1
fi
echo "== all ${#targets[@]} targets ran ${seconds} s each without a crash"
