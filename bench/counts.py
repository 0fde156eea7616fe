#!/usr/bin/env python3
"""What keeping the counts (`inquiry_counts`) costs a submission on SQLite, by
way of keeping them: CPU per inserted inquiry with no counting at all, with a
per-row AFTER INSERT trigger (an upsert, a plain update, an empty `SELECT 1`),
and with one upsert per key and batch as the server's writer does.

    python3 bench/counts.py [--rows 20000] [--rounds 2] [--no-build]

Each variant gets a database migrated by the release binary, then inserts rows
of ~300 bytes in transactions of 25 (the group commit's mean batch at
saturation) with Python's sqlite3, synchronous off: the figure is the CPU the
insert statements cost, Python's own overhead included, the same in every
variant. Rounds interleave the variants.
"""
import argparse
import pathlib
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import lib  # noqa: E402

TRIGGER = "CREATE TRIGGER counted AFTER INSERT ON inquiries BEGIN {} END"
VARIANTS = {
    "no counts": None,
    "trigger: upsert": TRIGGER.format(
        "INSERT INTO inquiry_counts (day, form, status, category, n, unread) VALUES (NEW.received_at / 86400000, "
        "NEW.form, NEW.status, NEW.category, 1, 1) ON CONFLICT DO UPDATE SET n = n + 1, unread = unread + 1;"),
    "trigger: update": TRIGGER.format(
        "UPDATE inquiry_counts SET n = n + 1, unread = unread + 1 WHERE day = NEW.received_at / 86400000 "
        "AND form = NEW.form AND status = NEW.status AND category = NEW.category;"),
    "trigger: empty (SELECT 1)": TRIGGER.format("SELECT 1;"),
    "writer: one upsert per key and batch": "batch",
}
BATCH = 25


def measure(variant, rows):
    with tempfile.TemporaryDirectory() as tmp:
        config = pathlib.Path(tmp) / "inquiryd.toml"
        config.write_text(f'[database]\nurl = "sqlite://{tmp}/inquiries.db"\n')
        subprocess.run([str(lib.TARGET / "inquiryd"), "--config", str(config), "migrate"], check=True,
                       capture_output=True)
        db = sqlite3.connect(f"{tmp}/inquiries.db", isolation_level=None)
        db.execute("PRAGMA synchronous = OFF")
        sql = VARIANTS[variant]
        if sql and sql != "batch":
            db.execute(sql)
        rng = random.Random(1)
        now = int(time.time() * 1000)
        started = time.process_time()
        for b in range(rows // BATCH):
            db.execute("BEGIN")
            keys = {}
            for i in range(BATCH):
                status, category = rng.choice(["new", "spam"]), rng.choice(["inquiry", "question"])
                keys[(status, category)] = keys.get((status, category), 0) + 1
                db.execute(
                    "INSERT INTO inquiries (id, received_at, status, category, name, email, email_norm, subject, "
                    "message, form, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (str(uuid.uuid4()), now + b * BATCH + i, status, category, "Имя", "a@example.org",
                     "a@example.org", "Тема", "Сообщение " * 30, "contact", now))
            if sql == "batch":
                for (status, category), n in keys.items():
                    db.execute(
                        "INSERT INTO inquiry_counts (day, form, status, category, n, unread) VALUES (?,?,?,?,?,?) "
                        "ON CONFLICT DO UPDATE SET n = n + excluded.n, unread = unread + excluded.unread",
                        (now // 86400000, "contact", status, category, n, n))
            db.execute("COMMIT")
        spent = time.process_time() - started
        db.close()
        return spent / rows * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if not args.no_build:
        lib.build()
    results = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            results[variant].append(measure(variant, args.rows))
    print(f"SQLite {sqlite3.sqlite_version} (Python's), {args.rows} rows in transactions of {BATCH}, "
          f"{args.rounds} rounds")
    base = min(results["no counts"])
    for variant, times in results.items():
        print(f"{variant:<40} {' '.join(f'{t:6.1f}' for t in times)} us per insert "
              f"(+{min(times) - base:5.1f} us)")


if __name__ == "__main__":
    main()
