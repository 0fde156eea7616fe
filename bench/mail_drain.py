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
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"


def build():
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--bin", "inquiryd", "--example", "smtp_sink"],
        cwd=ROOT, check=True,
    )


def start(cmd, prefix, **kw):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **kw)
    for line in proc.stdout:
        if line.startswith(prefix):
            return proc, line[len(prefix):].strip()
    raise SystemExit(f"{cmd[0]} did not start")


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
        tmp = pathlib.Path(tmp)
        counter = tmp / "count"
        sink, address = start(
            [str(TARGET / "examples" / "smtp_sink"), "--count-file", str(counter), "--threads", "64"],
            "smtp_sink listening on ",
        )
        port = address.rsplit(":", 1)[1]
        (tmp / "inquiryd.toml").write_text(f"""
[server]
port = 0
[database]
url = "sqlite://{tmp}/inquiries.db"
[mail]
transport = "smtp"
concurrency = {pool}
[smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
timeout_seconds = 120
pool_size = {pool}
tcp_nodelay = {"true" if nodelay else "false"}
[limits]
per_ip_per_minute = 100000000
per_ip_burst = 100000000
per_email_per_hour = 100000000
[log]
level = "warn"
""")
        sink.send_signal(signal.SIGSTOP)
        server, base = start(
            [str(TARGET / "inquiryd"), "--config", str(tmp / "inquiryd.toml"), "serve"],
            "inquiryd listening on ",
        )
        try:
            with ThreadPoolExecutor(16) as pool_:
                list(pool_.map(lambda n: post(base, n), range(count)))
            started = time.monotonic()
            sink.send_signal(signal.SIGCONT)
            deadline = started + 600
            delivered = 0
            while time.monotonic() < deadline:
                try:
                    delivered = int(counter.read_text().strip() or 0)
                except (FileNotFoundError, ValueError):
                    delivered = 0
                if delivered >= count:
                    break
                time.sleep(0.005)
            elapsed = time.monotonic() - started
            return delivered, elapsed
        finally:
            server.terminate()
            server.wait()
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
        build()
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
