#!/usr/bin/env python3
"""What the rate limiter costs.

    python3 bench/limiter.py [--duration 8] [--rounds 2]
    python3 bench/limiter.py --backends [--duration 8] [--rounds 3] [--redis redis://127.0.0.1:6379]

Default: accepted submissions/s over many distinct client addresses with the
limiter on, against the same server build with it off, and the server's memory
after a flood of 200,000 distinct addresses.

--backends: the cost per request of `limits.backend = "redis"` against
"memory", in the same run on the same machine, alternating rounds. Two
workloads, each from a new forwarded address per request:
  accepted  valid 1-5 KB submissions (two checks each: address and email), and
  refused   bodies "{}" (one check, the address, then 422: no database write),
where the limiter's share of the work is largest. Prints requests/s and CPU
per request of the server process (from /proc) and of Redis (INFO cpu), and
the ratios redis/memory.
"""
import argparse
import os
import socket
import sys
import time
import urllib.parse

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


def redis_cpu_seconds(url):
    """used_cpu_user + used_cpu_sys of the Redis server (INFO cpu), over a bare socket."""
    parsed = urllib.parse.urlparse(url)
    with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=5) as sock:
        if parsed.password:
            sock.sendall(f"AUTH {urllib.parse.unquote(parsed.password)}\r\n".encode())
            sock.recv(1024)
        sock.sendall(b"INFO cpu\r\n")
        data = b""
        while b"used_cpu_user:" not in data or not data.endswith(b"\r\n"):
            data += sock.recv(65536)
    stats = dict(line.split(":", 1) for line in data.decode().splitlines() if line.startswith("used_cpu_"))
    return float(stats["used_cpu_user"]) + float(stats["used_cpu_sys"])


def backend_round(backend, workload, duration, redis_url):
    limits = {"backend": backend, "redis_url": redis_url, "redis_key_prefix": f"inquiryd-bench:{os.getpid()}:"}
    with lib.Server(lib.merged(PROXY, lib.OPEN_LIMITS, {"limits": limits})) as server:
        env = {"BODY": "empty"} if workload == "refused" else {}
        lib.wrk(server.base + "/api/v1/inquiries", "submit.lua", duration=1, connections=64, env=env)  # warm-up
        cpu, redis_cpu = server.cpu_seconds(), redis_cpu_seconds(redis_url)
        result = lib.wrk(server.base + "/api/v1/inquiries", "submit.lua", duration=duration, connections=64, env=env)
        cpu, redis_cpu = server.cpu_seconds() - cpu, redis_cpu_seconds(redis_url) - redis_cpu
        expected_errors = result["requests"] if workload == "refused" else 0
        assert result["errors"] == expected_errors, result["raw"]
        fallbacks = server.metric("inquiryd_rate_limiter_backend_errors_total")
        assert fallbacks == 0, f"{fallbacks:.0f} checks were not answered by Redis: the figures would be memory's"
        requests = max(result["requests"], 1)
        return {"rps": result["rps"], "cpu_us": cpu * 1e6 / requests, "redis_us": redis_cpu * 1e6 / requests}


def compare_backends(args):
    rows = {}
    for workload in ("accepted", "refused"):
        for _ in range(args.rounds):
            for backend in ("memory", "redis"):
                rows.setdefault((backend, workload), []).append(
                    backend_round(backend, workload, args.duration, args.redis))
    print(f"{'backend':8} {'workload':9} {'requests/s (best)':>18} {'server CPU/request':>19} {'Redis CPU/request':>18}")
    best = {}
    for (backend, workload), runs in rows.items():
        top = max(runs, key=lambda r: r["rps"])
        # CPU per request: the median round (it moves less than the rate).
        cpu = sorted(r["cpu_us"] for r in runs)[len(runs) // 2]
        redis_cpu = sorted(r["redis_us"] for r in runs)[len(runs) // 2]
        best[backend, workload] = (top["rps"], cpu)
        shown_redis = f"{redis_cpu:15.1f} us" if backend == "redis" else f"{'-':>18}"
        print(f"{backend:8} {workload:9} {top['rps']:18,.0f} {cpu:16.1f} us {shown_redis}")
    for workload in ("accepted", "refused"):
        (m_rps, m_cpu), (r_rps, r_cpu) = best["memory", workload], best["redis", workload]
        print(f"redis/memory, {workload}: requests/s {r_rps / m_rps:.1%}, server CPU per request {r_cpu / m_cpu:.1%}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--addresses", type=int, default=200_000)
    parser.add_argument("--backends", action="store_true", help="compare limits.backend redis against memory")
    parser.add_argument("--redis", default=os.environ.get("INQUIRYD_TEST_REDIS_URL", "redis://127.0.0.1:6379"))
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    lib.ensure_wrk()
    if not args.no_build:
        lib.build()
    if args.backends:
        started = time.time()
        compare_backends(args)
        print(f"({args.rounds} rounds of {args.duration} s per backend and workload, {time.time() - started:.0f} s)")
        return
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
