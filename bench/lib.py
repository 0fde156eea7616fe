"""Shared pieces of the benchmarks: build, run the release binary, drive wrk."""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
LUA = pathlib.Path(__file__).resolve().parent / "lua"

OPEN_LIMITS = {"limits": {"per_ip_per_minute": 10**9, "per_ip_burst": 10**9, "per_email_per_hour": 10**9}}


def merged(*layers):
    """Deep-merges dicts of TOML sections; later layers win."""
    out = {}
    for layer in layers:
        for section, values in layer.items():
            out.setdefault(section, {}).update(values)
    return out


def toml(config):
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "".join(f"[{section}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in values.items())
                   for section, values in config.items())


def build(examples=()):
    cmd = ["cargo", "build", "--release", "--locked", "--bin", "inquiryd"]
    for example in examples:
        cmd += ["--example", example]
    subprocess.run(cmd, cwd=ROOT, check=True)


def ensure_wrk():
    if shutil.which("wrk"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)


def start(cmd, prefix, **kw):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **kw)
    for line in proc.stdout:
        if line.startswith(prefix):
            return proc, line[len(prefix):].strip()
    raise SystemExit(f"{cmd[0]} did not start")


class Server:
    """inquiryd serving a fresh database in a temp dir; `config` is a dict of sections."""

    def __init__(self, config=None, keep_dir=None, raw="", binary=None):
        """`raw`: TOML appended as it is (arrays of tables); `binary`: another build to run."""
        self.tmp = None if keep_dir else tempfile.TemporaryDirectory()
        self.dir = pathlib.Path(keep_dir or self.tmp.name)
        base = {
            "server": {"port": 0},
            "database": {"url": f"sqlite://{self.dir}/inquiries.db"},
            "mail": {"file_dir": f"{self.dir}/mail", "transport": "log"},
            "log": {"level": "warn"},
        }
        (self.dir / "inquiryd.toml").write_text(toml(merged(base, config or {})) + raw)
        # Its commands (a token, say) must be run by the same build: another
        # one could migrate the database under it.
        self.binary = str(binary or TARGET / "inquiryd")
        self.proc, address = start(
            [self.binary, "--config", str(self.dir / "inquiryd.toml"), "serve"],
            "inquiryd listening on http://",
        )
        self.base = "http://" + address
        threading_drain(self.proc)

    def status(self, key):
        text = pathlib.Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1))

    def rss_mb(self):
        return self.status("VmRSS") / 1024

    def peak_mb(self):
        return self.status("VmHWM") / 1024

    def cpu_split(self):
        """CPU time (clock ticks) of the whole process so far, as (user, system):
        system is what the kernel spent on its behalf (system calls: sockets,
        WAL writes, fsync; waking and switching threads)."""
        fields = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])

    def thread_cpu(self):
        """CPU time (clock ticks, user + system) of each of the server's threads."""
        ticks = {}
        for stat in pathlib.Path(f"/proc/{self.proc.pid}/task").glob("*/stat"):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            ticks[stat.parent.name] = int(fields[11]) + int(fields[12])
        return ticks

    def thread_names(self):
        """The name (`comm`) of each of the server's threads: `inquiryd-writer`
        (SQLite's writer), `actix-server wo…` (HTTP), `tokio-rt-worker` (the rest)."""
        names = {}
        for comm in pathlib.Path(f"/proc/{self.proc.pid}/task").glob("*/comm"):
            try:
                names[comm.parent.name] = comm.read_text().strip()
            except FileNotFoundError:
                pass
        return names

    def cpu_seconds(self):
        """CPU time (user + system) of the whole server process so far, exited threads included."""
        fields = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metric(self, name):
        text = urllib.request.urlopen(self.base + "/metrics").read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self.tmp:
            self.tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def threading_drain(proc, keep=None):
    """Reads the process's output on a thread; each line into `keep` if given."""
    import threading

    sink = keep.append if keep is not None else (lambda line: None)
    threading.Thread(target=lambda: [sink(line) for line in proc.stdout], daemon=True).start()


def wrk(url, script=None, duration=10, connections=64, threads=1, env=None, rate=None):
    """Runs wrk; returns requests/s, latency percentiles (ms) and non-2xx/3xx count."""
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency"]
    if script:
        cmd += ["-s", str(LUA / script)]
    cmd.append(url)
    env = dict(os.environ, PHRASES=str(ROOT / "bench" / "phrases.txt"), **(env or {}))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {}
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\b", out, re.M):
        latency[int(pct)] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    return {"rps": rps, "requests": total, "errors": int(errors.group(1)) if errors else 0, "latency_ms": latency,
            "raw": out}


def settle(seconds=1.0):
    time.sleep(seconds)


def cursor(seq):
    """The API's cursor for a position (see domain::query::encode_cursor): its digits."""
    return str(seq)


PG_SERVER = os.environ.get("INQUIRYD_BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres")


class PgDb:
    """A fresh PostgreSQL database on PG_SERVER for one measurement, dropped after."""

    def __init__(self):
        self.name = f"inquiryd_bench_{os.getpid()}_{int(time.time() * 1000)}"
        self.url = PG_SERVER.rsplit("/", 1)[0] + "/" + self.name
        self.psql(PG_SERVER, f"CREATE DATABASE {self.name}")

    @staticmethod
    def psql(url, sql, *args):
        return subprocess.run(["psql", url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", *args, "-c", sql],
                              check=True, capture_output=True, text=True).stdout

    def query(self, sql):
        return self.psql(self.url, sql).strip()

    def drop(self):
        self.psql(PG_SERVER, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.drop()


def postgres_cpu_ticks():
    """CPU time (clock ticks) of every PostgreSQL server process on this machine."""
    ticks = 0
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text.split("(", 1)[1].rsplit(")", 1)
        if name.startswith("postgres"):
            fields = rest.split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks
