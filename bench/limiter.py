#!/usr/bin/env python3
"""What the rate limiter costs: accepted submissions/s over many distinct client
addresses with the limiter on, against the same server build with it off, and
the server's memory after a flood of 200,000 distinct addresses.

    python3 bench/limiter.py [--duration 8] [--rounds 2]
"""
import argparse
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import lib  # noqa: E402

PROXY = {"server": {"trusted_proxies": ["127.0.0.0/8"]}}


def throughput(enabled, duration):
    config = lib.merged(PROXY, lib.OPEN_LIMITS, {"limits": {"enabled": enabled}})
    with lib.Server(config) as server:
        result = lib.wrk(server.base + "/api/v1/inquiries", "submit.lua", duration=duration, connections=64)
        assert result["errors"] == 0, result["raw"]
        return result["rps"]


def flood(addresses):
    config = lib.merged(PROXY, {"limits": {"per_ip_per_minute": 5, "per_ip_burst": 5}})
    with lib.Server(config) as server:
        idle = server.rss_mb()
        seconds = 5
        sent = 0
        while sent < addresses:
            sent += lib.wrk(server.base + "/api/v1/inquiries", "submit.lua", duration=seconds, connections=32,
                            env={"BODY": "empty"})["requests"]
        return {"addresses": sent, "idle_mb": idle, "after_mb": server.rss_mb(), "peak_mb": server.peak_mb(),
                "overflow": server.metric("inquiryd_rate_limiter_overflow_total")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--addresses", type=int, default=200_000)
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    lib.ensure_wrk()
    if not args.no_build:
        lib.build()
    on, off = [], []
    for _ in range(args.rounds):
        on.append(throughput(True, args.duration))
        off.append(throughput(False, args.duration))
    best_on, best_off = max(on), max(off)
    print(f"limiter on : {' '.join(f'{r:8.0f}' for r in on)}  submissions/s (best {best_on:.0f})")
    print(f"limiter off: {' '.join(f'{r:8.0f}' for r in off)}  submissions/s (best {best_off:.0f})")
    print(f"ratio on/off: {best_on / best_off:.1%}  (goal >= 97%)")
    f = flood(args.addresses)
    print(f"after {f['addresses']} distinct addresses: RSS {f['after_mb']:.1f} MB "
          f"(idle {f['idle_mb']:.1f} MB, peak {f['peak_mb']:.1f} MB), requests over the key cap (shared overflow allowance) {f['overflow']:.0f}")


if __name__ == "__main__":
    main()
