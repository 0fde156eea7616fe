#!/usr/bin/env python3
"""A/B of two builds (or two settings) at one steady open-loop rate, alternated.

Each round starts a fresh server per variant, offers --rate submissions/s for
--seconds (examples/loadgen, 64 connections, unique 1-5 KB Unicode bodies from
distinct forwarded addresses), waits until every staff email has reached the
SMTP sink (up to 30 s), and reports the CPU the server spent per accepted
submission over that whole time: intake, the commit, the search index and the
delivery of its mail. Also the commits, the latency percentiles and what was
left undelivered, and how the CPU splits between SQLite's writer thread, the
HTTP workers and the rest (a build older than the named `inquiryd-writer`
thread counts its writer in the rest). Variants alternate (A B A B ...) so that
the machine's drift hits both.

    python3 bench/ab.py --a BINARY[:key=value,...] --b BINARY[:key=value,...] \
        [--rate 2500 | --saturate] [--seconds 10] [--rounds 3] [--out bench/results/NAME.json]

--saturate offers as much as 64 connections can send instead (wrk, closed
loop, as bench/run's saturation step) and reports accepted submissions/s and
the CPU per accepted submission during the run, without waiting for the mail.

key=value pairs are config overrides such as database.commit_delay_us=0.
Build the binaries first (`cargo build --release`; an older commit in a
worktree of its own).
"""
import argparse
import json
import os
import pathlib
import statistics
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


def group(thread_name):
    """Which part of the server a thread is, by its name."""
    if thread_name == "inquiryd-writer":
        return "writer"
    return "http" if thread_name.startswith("actix") else "other"


def variant(spec):
    binary, _, settings = spec.partition(":")
    overrides = {}
    for pair in filter(None, settings.split(",")):
        key, value = pair.split("=", 1)
        section, name = key.split(".", 1)
        overrides.setdefault(section, {})[name] = int(value) if value.lstrip("-").isdigit() else value
    return {"spec": spec, "binary": binary, "overrides": overrides}


def once(v, sink, rate, seconds):
    """One run; `rate` None saturates (wrk) and does not wait for the mail."""
    with lib.Server(lib.merged(run.config(sink), v["overrides"]), binary=v["binary"]) as server:
        time.sleep(1)
        before = server.thread_cpu()
        system_before = server.cpu_split()[1]
        accepted_before = server.metric('inquiryd_submissions_total{outcome="accepted"}')
        mailed_before = sink.count()
        commits_before = server.metric("inquiryd_store_commits_total")
        if rate is None:
            submit = lib.wrk(server.base + "/api/v1/inquiries", "submit.lua", duration=seconds)
            load = {"p50_ms": submit["latency_ms"].get(50), "p99_ms": submit["latency_ms"].get(99),
                    "accepted_per_s": round(run.accepted_rate(submit))}
        else:
            load = run.loadgen(server, rate, seconds)
        accepted = server.metric('inquiryd_submissions_total{outcome="accepted"}') - accepted_before
        deadline = time.monotonic() + (0 if rate is None else 30)
        while sink.count() - mailed_before < accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        names = server.thread_names()
        ticks = {"writer": 0, "http": 0, "other": 0}
        for tid, t in server.thread_cpu().items():
            ticks[group(names.get(tid, ""))] += t - before.get(tid, 0)
        spent = sum(ticks.values())
        system = server.cpu_split()[1] - system_before
        per_submission = 1e6 / os.sysconf("SC_CLK_TCK") / max(accepted, 1)
        return {
            "accepted": accepted,
            "undelivered": accepted - (sink.count() - mailed_before),
            "commits": server.metric("inquiryd_store_commits_total") - commits_before,
            "cpu_us_per_submission": spent * per_submission,
            # Of it, the kernel's part (system time: system calls, thread switches).
            "system_us_per_submission": round(system * per_submission),
            # Where it went: SQLite's writer thread, the HTTP workers, the rest
            # (the outbox workers composing and sending mail, timers, the runtime).
            "cpu_us_by_thread": {name: round(t * per_submission) for name, t in ticks.items()},
            "p50_ms": load["p50_ms"],
            "p99_ms": load["p99_ms"],
            **({"accepted_per_s": load["accepted_per_s"]} if rate is None else {}),
        }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument("--rate", type=int, default=2500)
    rate.add_argument("--saturate", action="store_true")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    variants = {"a": variant(args.a), "b": variant(args.b)}
    runs = {"a": [], "b": []}
    with tempfile.TemporaryDirectory() as tmp:
        sink = run.Sink(tmp)
        try:
            for _ in range(args.rounds):
                for name in ("a", "b"):
                    result = once(variants[name], sink, None if args.saturate else args.rate, args.seconds)
                    runs[name].append(result)
                    print(name, json.dumps(result), flush=True)
        finally:
            sink.stop()
    summary = {}
    for name in ("a", "b"):
        cpu = [r["cpu_us_per_submission"] for r in runs[name]]
        summary[name] = {"variant": variants[name]["spec"], "cpu_us_median": statistics.median(cpu),
                         "cpu_us": [round(c) for c in cpu],
                         "system_us": [r["system_us_per_submission"] for r in runs[name]],
                         "commits": [r["commits"] for r in runs[name]],
                         "p50_ms": [r["p50_ms"] for r in runs[name]], "p99_ms": [r["p99_ms"] for r in runs[name]],
                         "undelivered": [r["undelivered"] for r in runs[name]],
                         "accepted_per_s": [r.get("accepted_per_s") for r in runs[name]],
                         "cpu_us_by_thread": {part: statistics.median(r["cpu_us_by_thread"][part] for r in runs[name])
                                              for part in ("writer", "http", "other")}}
    ratio = summary["b"]["cpu_us_median"] / summary["a"]["cpu_us_median"]
    if args.saturate:
        for name in ("a", "b"):
            summary[name]["accepted_per_s_median"] = statistics.median(r["accepted_per_s"] for r in runs[name])
        print(f"\nAt saturation (wrk, 64 connections, {args.seconds} s, {args.rounds} rounds, medians): "
              f"a {summary['a']['accepted_per_s_median']:,.0f}/s, b {summary['b']['accepted_per_s_median']:,.0f}/s; "
              f"CPU per submission (mail not waited for): a {summary['a']['cpu_us_median']:.0f} us, "
              f"b {summary['b']['cpu_us_median']:.0f} us (b/a {ratio:.2f})")
    else:
        print(f"\nCPU per submission, its mail delivered, at {args.rate}/s for {args.seconds} s "
              f"({args.rounds} rounds, medians): a {summary['a']['cpu_us_median']:.0f} us, "
              f"b {summary['b']['cpu_us_median']:.0f} us (b/a {ratio:.2f})")
    for name in ("a", "b"):
        s = summary[name]
        by_thread = ", ".join(f"{part} {us:.0f}" for part, us in s["cpu_us_by_thread"].items())
        rates = f"accepted {s['accepted_per_s']}/s, " if args.saturate else ""
        # At saturation the mail is not waited for: what is still queued says nothing.
        left = "" if args.saturate else f", undelivered {s['undelivered']}"
        print(f"  {name}: {s['variant']}\n     {rates}CPU {s['cpu_us']} us ({by_thread}; "
              f"kernel {s['system_us']}), commits {s['commits']}, "
              f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms{left}")
    if args.out:
        record = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "rate": "saturation" if args.saturate else args.rate,
                  "seconds": args.seconds, "rounds": args.rounds, "b_over_a": ratio, **summary, "runs": runs}
        pathlib.Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
