#!/usr/bin/env python3
"""Outbox drain rate: notifications per second from inquiryd to a local SMTP sink.

Queues N notifications while the sink is frozen (SIGSTOP: it accepts TCP
connections but never greets), then thaws it and times how long the outbox takes
to deliver all N. Runs twice, with TCP_NODELAY on (the default) and off, so the
ratio shows what disabling Nagle's algorithm buys. Uses the release binaries.

    python3 bench/mail_drain.py [--count 3000] [--pool 4]
"""
import argparse
import json
import signal
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, __import__("os").path.dirname(__file__))
import lib  # noqa: E402


def post(base, n):
    body = json.dumps({
        "name": "Бенчмарк Тестович", "email": f"visitor{n}@example.org", "subject": f"关于合作 {n}",
        "message": "Здравствуйте! 你好 👋 " * 20 + str(n),
    }).encode()
    req = urllib.request.Request(base + "/api/v1/inquiries", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 201


def run(count, pool, nodelay):
    with tempfile.TemporaryDirectory() as tmp:
        counter = lib.pathlib.Path(tmp) / "count"
        sink, address = lib.start(
            [str(lib.TARGET / "examples" / "smtp_sink"), "--count-file", str(counter), "--threads", "64"],
            "smtp_sink listening on ",
        )
        config = lib.merged(lib.OPEN_LIMITS, {
            "mail": {"transport": "smtp", "concurrency": pool},
            "smtp": {"host": "127.0.0.1", "port": int(address.rsplit(":", 1)[1]), "tls": "none",
                     "timeout_seconds": 120, "pool_size": pool, "tcp_nodelay": nodelay},
        })
        sink.send_signal(signal.SIGSTOP)
        try:
            with lib.Server(config) as server:
                with ThreadPoolExecutor(16) as workers:
                    list(workers.map(lambda n: post(server.base, n), range(count)))
                started = time.monotonic()
                sink.send_signal(signal.SIGCONT)
                delivered = 0
                while time.monotonic() < started + 600:
                    try:
                        delivered = int(counter.read_text().strip() or 0)
                    except (FileNotFoundError, ValueError):
                        delivered = 0
                    if delivered >= count:
                        break
                    time.sleep(0.005)
                return delivered, time.monotonic() - started
        finally:
            sink.send_signal(signal.SIGCONT)
            sink.kill()
            sink.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--pool", type=int, default=4, help="smtp.pool_size and mail.concurrency (default 4)")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if not args.no_build:
        lib.build(examples=["smtp_sink"])
    results = {}
    for nodelay in (True, False):
        count = args.count if nodelay else max(200, args.count // 10)
        delivered, elapsed = run(count, args.pool, nodelay)
        results[nodelay] = delivered / elapsed
        print(f"tcp_nodelay={str(nodelay).lower():5}  {delivered} notifications in {elapsed:6.2f} s"
              f"  = {results[nodelay]:8.1f} msg/s  (pool {args.pool})", flush=True)
        if delivered < count:
            print(f"  only {delivered} of {count} delivered", file=sys.stderr)
            sys.exit(1)
    print(f"ratio nodelay on / off: {results[True] / results[False]:.1f}x")


if __name__ == "__main__":
    main()
