#!/usr/bin/env python3
"""A retention purge of a backlog, beside a server taking submissions (SQLite).

Seeds N inquiries spread over the past year (bench/admin.py's rows) into a
migrated database and lets a server index them, then starts a server and
submits one inquiry every 20 ms from one client while a purge with
`retention_days` 100 erases the ~73 % past it:

- `--by cli` (default): `inquiryd purge` runs beside the server (its own
  process, its own write transactions on the same file); reports how long it
  took and its peak RSS (`/usr/bin/time -v`).
- `--by server`: the server's own purge (a second after start) does it; the
  submissions are watched for `--watch` seconds.

Either way: how many submissions were answered with which status, and the
slowest answer.

    python3 bench/purge.py [--rows 100000] [--by cli|server] [--binary PATH] [--no-build]

PATH is another build's `inquiryd`; the servers are started from its directory.
"""
import argparse
import json
import pathlib
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import importlib.machinery
import importlib.util

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lib  # noqa: E402

_loader = importlib.machinery.SourceFileLoader("bench_admin", str(HERE / "admin.py"))
admin = importlib.util.module_from_spec(importlib.util.spec_from_loader("bench_admin", _loader))
_loader.exec_module(admin)

UNLIMITED = {"per_ip_per_minute": 1_000_000, "per_ip_burst": 1_000_000, "per_email_per_hour": 1_000_000}


def submitting(server, stop, answers):
    """One client, a submission every 20 ms: (seconds, status) per answer."""
    n = 0
    while not stop.is_set():
        body = json.dumps({"name": "Анна", "email": f"visitor{n}@example.org", "subject": "Вопрос",
                           "message": f"Вопрос о телескопе и 天文合作 {n}", "consent": True}).encode()
        request = urllib.request.Request(server.base + "/api/v1/inquiries", data=body,
                                         headers={"Content-Type": "application/json"})
        started = time.monotonic()
        try:
            status = urllib.request.urlopen(request, timeout=60).status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError as e:
            status = type(e).__name__
        answers.append((time.monotonic() - started, status))
        n += 1
        time.sleep(0.02)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--by", choices=["cli", "server"], default="cli")
    parser.add_argument("--watch", type=float, default=25.0, help="--by server: seconds to watch")
    parser.add_argument("--binary", help="another build's inquiryd")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if args.binary:
        lib.TARGET = pathlib.Path(args.binary).resolve().parent
    elif not args.no_build:
        lib.build()
    binary = str(lib.TARGET / "inquiryd")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        db = tmp / "inquiries.db"
        cli_config = tmp / "cli.toml"
        cli_config.write_text(lib.toml({"database": {"url": f"sqlite://{db}"}, "log": {"level": "warn"},
                                        "privacy": {"retention_days": 100}}))
        subprocess.run([binary, "--config", str(cli_config), "migrate"], check=True, capture_output=True)
        admin.seed(db, args.rows)
        with lib.Server({"privacy": {"retention_days": 0}}, keep_dir=tmp):
            pass  # indexes the seeded rows
        days = 100 if args.by == "server" else 0
        with lib.Server({"privacy": {"retention_days": days}, "limits": UNLIMITED}, keep_dir=tmp) as server:
            stop, answers = threading.Event(), []
            client = threading.Thread(target=submitting, args=(server, stop, answers))
            client.start()
            time.sleep(1)
            started = time.monotonic()
            if args.by == "cli":
                purge = subprocess.run(["/usr/bin/time", "-v", binary, "--config", str(cli_config), "purge"],
                                       capture_output=True, text=True)
                took = time.monotonic() - started
                rss = next((line.split(":")[1].strip() for line in purge.stderr.splitlines()
                            if "Maximum resident" in line), "?")
                print(f"inquiryd purge: exit {purge.returncode} in {took:.1f} s, peak RSS {int(rss) // 1024} MB: "
                      f"{purge.stdout.strip() or purge.stderr.strip().splitlines()[0]}")
            else:
                time.sleep(args.watch)
                print(f"watched the server's own purge for {args.watch:.0f} s")
            time.sleep(1)
            stop.set()
            client.join()
        left = sqlite3.connect(db).execute("SELECT COUNT(*) FROM inquiries").fetchone()[0]
        print(f"inquiries left: {left} ({args.rows} seeded, {len(answers)} submitted)")
        statuses = {}
        for _, status in answers:
            statuses[status] = statuses.get(status, 0) + 1
        slowest = max(seconds for seconds, _ in answers)
        print(f"submissions during it: {len(answers)} answered {statuses}, the slowest in {slowest:.3f} s")


if __name__ == "__main__":
    main()
