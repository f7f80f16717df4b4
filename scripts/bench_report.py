#!/usr/bin/env python3
"""The figures `make bench` measured, beside the performance goals (README, "Performance").

Reads criterion's estimates (target/criterion), the throughput and cold-start logs `make bench`
wrote under target/bench/, and the sizes of the stripped release bootstraps. Prints one table;
a figure that is missing says so. Never fails on a figure: benchmarks measure, tests assert.
"""

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "target")


def criterion_median_us(group, bench):
    path = os.path.join(TARGET, "criterion", group, bench, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"] / 1000
    except (OSError, KeyError, ValueError):
        return None


def log(name):
    try:
        with open(os.path.join(TARGET, "bench", f"{name}.txt")) as f:
            return f.read()
    except OSError:
        return ""


def row(what, figure, goal, met):
    mark = "-" if met is None else ("met" if met else "MISSED")
    print(f"  {what:<46} {figure:>22}   {goal:<12} {mark}")


def main():
    print("predebit performance (make bench)")
    print(f"  {'figure':<46} {'measured':>22}   {'goal':<12}")
    for name, bench in [("decide() YES", "yes_allow_v1_base_usdc"),
                        ("decide() NO", "no_over_user_limit_by_one_unit")]:
        us = criterion_median_us("decide", bench)
        row(name, "missing" if us is None else f"{us:.2f} us", "<= 10 us",
            None if us is None else us <= 10)
    uncached = criterion_median_us("decide", "yes_policies_uncached")
    if uncached is not None:
        row("decide() YES, policies compiled every time", f"{uncached:.2f} us", "(reference)", None)
    sizes = {n: criterion_median_us("decide_policy_size", str(n)) for n in (1, 10, 100, 1000)}
    if all(v is not None for v in sizes.values()):
        ratio = sizes[1000] / sizes[1]
        row("decide() with 1/10/100/1000 list entries",
            "/".join(f"{sizes[n]:.1f}" for n in (1, 10, 100, 1000)) + " us", "", None)
        row("  1000 entries / 1 entry", f"{ratio:.2f}x", "<= 1.2x", ratio <= 1.2)
    else:
        row("decide() by policy size", "missing", "<= 1.2x", None)

    # (log, what the bare loop sends, the goal for the median ratio)
    for name, bare, goal in [("verify_throughput", "BatchGetItem", 0.95),
                             ("ledger_throughput", "transactions", 0.95),
                             ("authorize_throughput", "requests", None),
                             ("budget_throughput", "reserve with three budget windows", 0.90)]:
        text = log(name)
        function = "ledger" if name == "budget_throughput" else name.split("_")[0]
        m = re.search(r"per-round ratio over (\d+) rounds: median ([0-9.]+).*halves ([0-9.]+) and ([0-9.]+)", text)
        if m:
            ratio = float(m.group(2))
            row(f"{function} / bare {bare} (median of {m.group(1)} rounds)", f"{ratio:.3f}",
                f">= {goal:.2f}" if goal else "", ratio >= goal if goal else None)
            row(f"  halves of the rounds", f"{float(m.group(3)):.3f} / {float(m.group(4)):.3f}", "", None)
            total = re.search(r"ratio \w+/bare \(ops/s\): ([0-9.]+)", text)
            if total:
                row("  all rounds together", total.group(1), "", None)
            cpu = re.search(r"CPU per op: \w+ ([0-9.]+) us, bare ([0-9.]+) us", text)
            if cpu:
                row("  this process's CPU per op, function / bare",
                    f"{cpu.group(1)} / {cpu.group(2)} us", "", None)
        else:
            row(f"{function} / bare {bare}", "missing", "", None)

    for binary in ("verify", "ledger", "authorize"):
        path = os.path.join(TARGET, "release", binary)
        if os.path.exists(path):
            mb = os.path.getsize(path) / 1e6
            row(f"{binary} bootstrap, stripped (x86_64)", f"{mb:.2f} MB", "<= 8 MB", mb <= 8)
    cold = log("cold_start")
    for binary in ("verify", "ledger", "authorize"):
        m = re.search(rf"^{binary}\s+median\s+([0-9.]+) ms\s+p90\s+([0-9.]+) ms", cold, re.M)
        if m:
            ms = float(m.group(1))
            row(f"{binary} cold start (median; p90 {m.group(2)} ms)", f"{ms:.1f} ms", "<= 50 ms",
                ms <= 50)
        else:
            row(f"{binary} cold start", "missing", "<= 50 ms", None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
