#!/usr/bin/env python3
"""The admin API over a million inquiries: p50/p99 of list pages and search,
and a streamed export's rate and the server's peak memory.

Seeds N inquiries straight into a migrated database (Python's sqlite3; texts in
Russian, Chinese, Kazakh, Urdu and English), which the server indexes for
search at start-up (timed: on SQLite they are above the search file's
watermark; on PostgreSQL the index is marked incomplete), then measures over
one keep-alive connection.

    python3 bench/admin.py [--rows 1000000] [--requests 1000] [--database postgres] [--console]
    python3 bench/admin.py --rows 200000 --rebuild-against OTHER_BINARY [--rounds 2]

With --console (SQLite) the console is on too, and the same searches are timed as
console pages (signed in as an admin, the inbox and a search, HTML rendered),
beside the API's.

With --database postgres the same rows go into a fresh PostgreSQL database
(INQUIRYD_BENCH_PG, default the local server) by COPY, the search index is
built after the load (timed), and the same calls are measured.
"""
import argparse
import http.client
import json
import pathlib
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import lib  # noqa: E402

WORDS = {
    "ru": "сотрудничество лаборатория конференция студент вопрос проект данные наблюдения телескоп грант".split(),
    "zh": ["合作", "研究", "问题", "项目", "数据", "会议", "学生", "天文", "申请", "实验室"],
    "kk": "ынтымақтастық зертхана конференция студент сұрақ жоба деректер".split(),
    "ur": "تعاون تحقیق سوال منصوبہ کانفرنس طالب علم".split(),
    "en": "collaboration laboratory conference student question project data telescope grant visit".split(),
}
STATUSES = ["new"] * 6 + ["in_progress", "resolved", "resolved", "archived", "spam"]
CATEGORIES = ["inquiry", "inquiry", "question", "question", "commendation", "other"]


def text(rng, words):
    lang = rng.choice(list(WORDS))
    joiner = "" if lang == "zh" else " "
    return joiner.join(rng.choice(WORDS[lang]) for _ in range(words))


def rows_of(count):
    """The seeded inquiries, the same for both databases."""
    rng = random.Random(42)
    start_ms = int(time.time() * 1000) - 365 * 86400000
    step = 365 * 86400000 // count
    for n in range(count):
        received = start_ms + n * step
        email = f"visitor{rng.randrange(50000)}@example.org"
        yield (str(uuid.UUID(int=rng.getrandbits(128))), received, rng.choice(STATUSES), rng.choice(CATEGORIES),
               f"Посетитель {n}", email, email, text(rng, 4), text(rng, rng.randrange(20, 80)), "[]", received)


def seed_postgres(db, count):
    """COPY the rows in without their search documents (as if indexing had been
    off) and without the GIN index; the server indexes them at start-up."""
    import csv
    import io

    columns = "id, received_at, status, category, name, email, email_norm, subject, message, spam_flags, updated_at"
    db.query("DROP INDEX inquiries_search")
    copy = subprocess.Popen(["psql", db.url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                             f"\\copy inquiries ({columns}) FROM STDIN WITH (FORMAT csv)"],
                            stdin=subprocess.PIPE, text=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for n, row in enumerate(rows_of(count), start=1):
        writer.writerow(row)
        if n % 20000 == 0:
            copy.stdin.write(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
    copy.stdin.write(buffer.getvalue())
    copy.stdin.close()
    assert copy.wait() == 0
    db.query("UPDATE meta SET value = 'incomplete' WHERE key = 'search_index'")


def seed(db, rows):
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = OFF")
    insert = ("INSERT INTO inquiries (id, received_at, status, category, name, email, email_norm, subject, message,"
              " spam_flags, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
    batch = []
    for row in rows_of(rows):
        batch.append(row)
        if len(batch) == 20000:
            con.executemany(insert, batch)
            batch.clear()
    if batch:
        con.executemany(insert, batch)
    # The server's writer keeps the counts of what it inserts; rows put in
    # behind its back are counted here, as the migration counts existing rows.
    con.execute("DELETE FROM inquiry_counts")
    con.execute("INSERT INTO inquiry_counts (day, form, status, category, n, unread) "
                "SELECT received_at / 86400000, form, status, category, count(*), count(*) "
                "FROM inquiries GROUP BY 1, 2, 3, 4")
    # Rows above the search file's watermark are indexed when the server starts.
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def percentiles(conn, token, paths):
    times = []
    for path in paths:
        start = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
        times.append((time.perf_counter() - start) * 1000)
        assert response.status == 200, (path, response.status, body[:300])
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def rebuild_ab(seeded, args):
    """The start-up rebuild, timed for two builds alternately, each over its own copy of `seeded`."""
    for _ in range(args.rounds):
        for binary in (args.rebuild_against, str(lib.TARGET / "inquiryd")):
            copy = seeded / "copy"
            shutil.copytree(seeded, copy, ignore=shutil.ignore_patterns("copy"))
            started = time.monotonic()
            with lib.Server({}, keep_dir=copy, binary=binary) as server:
                elapsed, cpu = time.monotonic() - started, server.cpu_seconds()
            print(f"{binary}: search index rebuilt at start-up in {elapsed:.1f} s, {cpu:.1f} s of CPU", flush=True)
            shutil.rmtree(copy)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--console", action="store_true", help="time the console's inbox and search pages too")
    parser.add_argument("--rebuild-against", metavar="BINARY",
                        help="SQLite: only time the start-up rebuild of the search index, this build and BINARY "
                             "alternated over copies of the same seeded file (--rounds each)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not args.no_build:
        lib.build()
    if args.database == "postgres":
        with lib.PgDb() as db, tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            config = tmp / "inquiryd.toml"
            config.write_text(lib.toml({"database": {"url": db.url}, "log": {"level": "warn"}}))
            run = lambda *a: subprocess.run([str(lib.TARGET / "inquiryd"), "--config", str(config), *a],  # noqa: E731
                                            check=True, capture_output=True, text=True).stdout
            run("migrate")
            started = time.monotonic()
            seed_postgres(db, args.rows)
            print(f"seeded {args.rows} inquiries in {time.monotonic() - started:.1f} s", flush=True)
            token = run("token", "create", "--name", "bench").strip()
            started = time.monotonic()
            with lib.Server({"database": {"url": db.url}}, keep_dir=tmp) as server:
                print(f"search documents indexed at start-up in {time.monotonic() - started:.1f} s", flush=True)
                started = time.monotonic()
                db.query("SET maintenance_work_mem = '256MB'; CREATE INDEX inquiries_search ON inquiries "
                         "USING gin (search)")
                db.query("VACUUM ANALYZE inquiries")  # not inside the transaction of a multi-statement -c
                size = db.query("SELECT pg_size_pretty(pg_database_size(current_database()))")
                print(f"GIN index built and table vacuumed in {time.monotonic() - started:.1f} s ({size})", flush=True)
                measure(server, token, args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        db = tmp / "inquiries.db"
        config = tmp / "inquiryd.toml"
        config.write_text(lib.toml({"database": {"url": f"sqlite://{db}"}, "log": {"level": "warn"}}))
        run = lambda *a: subprocess.run([str(lib.TARGET / "inquiryd"), "--config", str(config), *a],  # noqa: E731
                                        check=True, capture_output=True, text=True).stdout
        run("migrate")
        started = time.monotonic()
        seed(db, args.rows)
        print(f"seeded {args.rows} inquiries in {time.monotonic() - started:.1f} s "
              f"({db.stat().st_size / 1e6:.0f} MB)", flush=True)
        if args.rebuild_against:
            rebuild_ab(tmp, args)
            return
        token = run("token", "create", "--name", "bench").strip()
        if args.console:
            subprocess.run([str(lib.TARGET / "inquiryd"), "--config", str(config), "user", "create", "--email",
                            "bench@example.org", "--role", "admin"], input=CONSOLE_PASSWORD + "\n", check=True,
                           capture_output=True, text=True)
        started = time.monotonic()
        with lib.Server({"admin": {"console": args.console}}, keep_dir=tmp) as server:
            print(f"search index rebuilt at start-up in {time.monotonic() - started:.1f} s", flush=True)
            measure(server, token, args)
            if args.console:
                measure_console(server, args)

CONSOLE_PASSWORD = "a long benchmark passphrase"


def measure_console(server, args):
    """The console's inbox and search pages, signed in, over one keep-alive connection."""
    import urllib.parse
    host = server.base.removeprefix("http://")
    conn = http.client.HTTPConnection(host)
    form = urllib.parse.urlencode({"email": "bench@example.org", "password": CONSOLE_PASSWORD})
    conn.request("POST", "/admin/login", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Origin": server.base})
    response = conn.getresponse()
    response.read()
    assert response.status == 303, response.status
    cookie = response.getheader("Set-Cookie").split(";")[0]
    cases = [
        ("console inbox (first page, tabs and counts)", "/admin"),
        ("console search, Russian word", "/admin?q=%D1%82%D0%B5%D0%BB%D0%B5%D1%81%D0%BA%D0%BE%D0%BF"),
        ("console search, two-character Chinese word", "/admin?q=%E5%A4%A9%E6%96%87"),
        ("console dashboard, 90 days", "/admin/dashboard?days=90"),
    ]
    for name, path in cases:
        times = []
        for _ in range(max(args.requests // 5, 20)):
            start = time.perf_counter()
            conn.request("GET", path, headers={"Cookie": cookie})
            response = conn.getresponse()
            body = response.read()
            times.append((time.perf_counter() - start) * 1000)
            assert response.status == 200 and (b"<table" in body or b"<svg" in body), (path, response.status, body[:300])
        times.sort()
        print(f"{name:<52} {statistics.median(times):8.2f} {times[int(len(times) * 0.99) - 1]:8.2f}", flush=True)


def measure(server, token, args):
    host = server.base.removeprefix("http://")
    conn = http.client.HTTPConnection(host)
    first_page = json.loads((conn.request("GET", "/api/v1/admin/inquiries?limit=50",
                                          headers={"Authorization": f"Bearer {token}"}),
                             conn.getresponse().read())[1])
    assert len(first_page["items"]) == 50
    rng = random.Random(7)
    deep = [f"/api/v1/admin/inquiries?limit=50&cursor={lib.cursor(rng.randrange(1000, 20000))}"
            for _ in range(args.requests)]
    cases = [
        ("first page", ["/api/v1/admin/inquiries?limit=50"] * args.requests),
        ("filtered page (status=resolved&category=question)",
         ["/api/v1/admin/inquiries?limit=50&status=resolved&category=question"] * args.requests),
        ("deep cursor page (oldest 2%)", deep),
        ("search newest-first, Russian word",
         ["/api/v1/admin/inquiries?limit=50&q=%D1%82%D0%B5%D0%BB%D0%B5%D1%81%D0%BA%D0%BE%D0%BF"] * args.requests),
        ("search newest-first, two-character Chinese word",
         ["/api/v1/admin/inquiries?limit=50&q=%E5%A4%A9%E6%96%87"] * args.requests),
    ]
    results = {}
    print(f"{'call':<52} {'p50 ms':>8} {'p99 ms':>8}")
    for name, paths in cases:
        # A fast answer that finds nothing would measure nothing: each call finds a full page.
        conn.request("GET", paths[0], headers={"Authorization": f"Bearer {token}"})
        found = len(json.loads(conn.getresponse().read())["items"])
        assert found == 50, (name, found)
        p50, p99 = percentiles(conn, token, paths)
        results[name] = (p50, p99)
        print(f"{name:<52} {p50:8.2f} {p99:8.2f}", flush=True)
    before_peak = server.peak_mb()
    started = time.monotonic()
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}", "-H",
                          f"Authorization: Bearer {token}",
                          server.base + "/api/v1/admin/inquiries/export?format=ndjson"],
                         check=True, capture_output=True, text=True).stdout
    elapsed = time.monotonic() - started
    print(f"export ndjson: {args.rows} rows, {int(out) / 1e6:.0f} MB in {elapsed:.2f} s = "
          f"{args.rows / elapsed:,.0f} rows/s; server peak RSS {server.peak_mb():.1f} MB "
          f"(before the export {before_peak:.1f} MB)")


if __name__ == "__main__":
    main()
