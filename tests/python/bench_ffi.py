"""FFI benchmark through the Python bindings (run by tests/bench_ffi.sh on the release library).

Prints one table: the cost of a call across the FFI, node open time (first open creating the
identity and database, and reopening), idle RSS of a started node, and the library's size.
"""

import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.environ["OFFST_BENCH_BINDINGS"])
import offst  # noqa: E402

RELAY = "offst-relay:gTl3Dqh9F19Wo1Rmw0x-zMuNipG07jeiXfYPW4_Js5Q@127.0.0.1:9"  # nothing listens


def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def per_call_us(function, count):
    started = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - started) / count * 1e6


def main():
    library = os.environ["OFFST_BENCH_LIBRARY"]
    rows = []
    base = tempfile.mkdtemp(prefix="offst-bench-")
    rss_before = rss_kib()

    opens, reopens = [], []
    for i in range(10):
        path = os.path.join(base, f"node-{i}")
        started = time.perf_counter()
        node = offst.OffstNode.open(offst.OffstConfig(data_dir=path, relays=[RELAY], key_secret=None))
        opens.append(time.perf_counter() - started)
        del node
        started = time.perf_counter()
        node = offst.OffstNode.open(offst.OffstConfig(data_dir=path, relays=[RELAY], key_secret=None))
        reopens.append(time.perf_counter() - started)
        del node

    node = offst.OffstNode.open(
        offst.OffstConfig(data_dir=os.path.join(base, "idle"), relays=[RELAY], key_secret=None)
    )
    node.start()
    card = node.friend_card("bench")
    simple = per_call_us(node.public_key, 20000)
    parse = per_call_us(lambda: offst.parse_friend_card(card), 20000)
    driver = per_call_us(node.friends, 5000)
    time.sleep(1.0)
    idle_rss = rss_kib() - rss_before

    rows.append(("FFI call, no work (public_key)", f"{simple:.2f} µs"))
    rows.append(("FFI call + card parse (parse_friend_card)", f"{parse:.2f} µs"))
    rows.append(("FFI call through the node driver (friends)", f"{driver:.2f} µs"))
    rows.append(("node open, first time (key + database)", f"{statistics.median(opens) * 1e3:.2f} ms (median of 10)"))
    rows.append(("node open, existing data", f"{statistics.median(reopens) * 1e3:.2f} ms (median of 10)"))
    rows.append(("idle RSS of a started node (process delta)", f"{idle_rss / 1024:.1f} MiB"))
    rows.append(("library size, stripped (release-smaller)", f"{os.path.getsize(library) / 1e6:.2f} MB"))

    width = max(len(name) for name, _ in rows)
    print(f"| {'what':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    node.stop()


if __name__ == "__main__":
    main()
