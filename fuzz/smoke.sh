#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer coverage instrumentation on the stable toolchain
# (the same flags cargo-fuzz passes, without needing nightly or cargo-fuzz) and runs each for
# a short smoke run. Usage: fuzz/smoke.sh [seconds per target, default 10]
# For long runs with cargo-fuzz: `cargo fuzz run <target>` from this directory (nightly).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-10}
target_triple=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cdebug-assertions -Coverflow-checks"
echo "fuzz: building targets (release, coverage-instrumented)"
cargo build --quiet --release --target "$target_triple" --target-dir target
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^offst-fuzz$')
passed=0
failed=0
for target in $targets; do
  mkdir -p "corpus/$target"
  log="target/smoke-$target.log"
  if "target/$target_triple/release/$target" -max_total_time="$seconds" -rss_limit_mb=2048 \
      -max_len=65536 "corpus/$target" >"$log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1)
    echo "fuzz: $target ok (${runs:-no summary})"
    passed=$((passed + 1))
  else
    echo "fuzz: $target FAILED; last lines of $log:"
    tail -30 "$log"
    failed=$((failed + 1))
  fi
done
echo "fuzz smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
