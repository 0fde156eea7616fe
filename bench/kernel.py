#!/usr/bin/env python3
"""Where the kernel's part of a submission's CPU goes, by system call and thread.

Starts a server as bench/run's sustained step does (search on, staff mail to
the SMTP sink), offers --rate submissions/s for --seconds (examples/loadgen),
records the server with `perf record -g` meanwhile, and waits until every
staff email has reached the sink. Prints the CPU per submission (user and
system, from /proc, until the mail is delivered), then the kernel samples by
the system call they fell in (`__x64_sys_*` in the kernel's call chain) and by
thread (the writer and the search thread are `inquiryd-*`, the HTTP workers
`actix-*`, composing and sending mail the tokio workers `tokio-rt-*`), as µs
per submission over the recorded window. Needs `perf` and root.

    python3 bench/kernel.py [--rate 1750] [--seconds 10] [--binary PATH] [--out bench/results/NAME.json]
"""
import argparse
import collections
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import importlib.machinery
import importlib.util

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lib  # noqa: E402

_loader = importlib.machinery.SourceFileLoader("bench_run", str(HERE / "run"))
run = importlib.util.module_from_spec(importlib.util.spec_from_loader("bench_run", _loader))
_loader.exec_module(run)

FREQUENCY = 999


def kernel_samples(perf_data):
    """(thread group, system call or None) of every sample taken in the kernel, and the count of all samples."""
    script = subprocess.run(["perf", "script", "-i", perf_data, "-F", "comm,ip,sym"],
                            capture_output=True, text=True, check=True).stdout
    samples, total = collections.Counter(), 0
    for block in script.split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        total += 1
        frames = [line.split(None, 1) for line in lines[1:]]
        if not frames or not frames[0][0].startswith("ffffffff"):
            continue
        call = next((m.group(1) for _, *sym in frames if sym and (m := re.match(r"__x64_sys_(\w+)", sym[0]))), None)
        samples[(lines[0].strip(), call)] += 1
    return samples, total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1750)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--binary")
    parser.add_argument("--out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sink = run.Sink(tmp)
        try:
            with lib.Server(run.config(sink), binary=args.binary) as server:
                time.sleep(1)
                user0, system0 = server.cpu_split()
                accepted0 = server.metric('inquiryd_submissions_total{outcome="accepted"}')
                mailed0 = sink.count()
                perf_data = f"{tmp}/perf.data"
                perf = subprocess.Popen(
                    ["perf", "record", "-F", str(FREQUENCY), "-g", "-o", perf_data, "-p", str(server.proc.pid),
                     "--", "sleep", str(args.seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                started = time.monotonic()
                load = run.loadgen(server, args.rate, args.seconds)
                perf.wait()
                recorded = time.monotonic() - started
                accepted = server.metric('inquiryd_submissions_total{outcome="accepted"}') - accepted0
                deadline = time.monotonic() + 30
                while sink.count() - mailed0 < accepted and time.monotonic() < deadline:
                    time.sleep(0.05)
                user1, system1 = server.cpu_split()
        finally:
            sink.stop()
        tick_us = 1e6 / os.sysconf("SC_CLK_TCK") / max(accepted, 1)
        samples, total = kernel_samples(perf_data)
    # Each sample is 1/FREQUENCY s of CPU; the load offered over the recorded window.
    per_sample_us = 1e6 / FREQUENCY / max(min(recorded, args.seconds) * args.rate, 1)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rate": args.rate, "seconds": args.seconds, "p99_ms": load["p99_ms"], "accepted": accepted,
        "cpu_us_per_submission": {"user": (user1 - user0) * tick_us, "system": (system1 - system0) * tick_us},
        "perf": {"samples": total, "us_per_submission": total * per_sample_us,
                 "kernel_us_per_submission": sum(samples.values()) * per_sample_us,
                 "kernel_by_thread_and_call": [
                     {"thread": thread, "call": call, "us": round(n * per_sample_us, 1)}
                     for (thread, call), n in samples.most_common()]},
    }
    cpu = result["cpu_us_per_submission"]
    print(f"{accepted:,.0f} accepted at {args.rate}/s for {args.seconds} s, p99 {load['p99_ms']} ms; CPU per "
          f"submission until its mail was delivered: {cpu['user'] + cpu['system']:.0f} us, "
          f"{cpu['system']:.0f} us of it in the kernel")
    print(f"perf, {total:,} samples: {result['perf']['us_per_submission']:.0f} us per submission, "
          f"{result['perf']['kernel_us_per_submission']:.0f} us in the kernel:")
    for row in result["perf"]["kernel_by_thread_and_call"][:16]:
        print(f"  {row['us']:6.1f} us  {row['thread']:<16} {row['call'] or '(no system call: faults, interrupts)'}")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
