"""Build the Docker image as docker/README.md says and run `make test` inside it.

Needs a running Docker daemon (`docker info` answers). Steps, each timed:
  1. the base image: without a registry, a Debian bookworm made with `debootstrap --variant=minbase` (python3.11
     with its venv module) and `docker import`ed as BASE (default a2qflow-base:bookworm); skipped when BASE exists
     already (or pass --base-image python:3.11-slim-bookworm when a registry is reachable);
  2. a package index on the loopback: this host's pip (with its own configuration: certificates, mirrors, local
     wheels, constraints) downloads every wheel the image needs (pyproject's dependencies, the test extra and the
     build backend) into --wheelhouse, which gets a PEP 503 `simple/` index and is served by `python -m http.server`
     on 127.0.0.1:PORT; the build's pip uses it alone (PIP_INDEX_URL; no extra index), so torch is the 2.13.0+cpu
     wheel this host resolves; --no-index-server builds with the Dockerfile's defaults (PyPI + PyTorch CPU index);
  3. `docker build --network host` with the README's build args (BASE_IMAGE, PIP_INDEX_URL, PIP_EXTRA_INDEX_URL);
  4. the README's test command, `docker run --rm --user UID:GID --network none --entrypoint make a2qflow test`
     (run under `nice -n N` inside the container unless --nice 0).
Writes benchmarks/results/docker_make_test.md (date, commands, image id and size, Python / torch versions in the
image, durations, pytest's summary line and its short summary) and the full log next to it
(docker_make_test.log); exits 1 when the build or a test fails. The http server it starts is stopped on exit.

    sudo nice -n 10 .venv/bin/python benchmarks/docker_make_test.py [--user 1000:1000] [--nice 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from a2qflow.hw.files import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
LOG = RESULTS / "docker_make_test.log"
DEBIAN_PACKAGES = "python3.11,python3.11-venv,python3-venv,ca-certificates"
SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed|error|errors|skipped)\b.* in [\d.]+s.*?)\s*=*$")


def sh(cmd: list[str], log, **kw) -> subprocess.CompletedProcess:
    """Run `cmd`, streaming its output to the terminal and to `log` (progress for steps that take minutes)."""
    print("$", shlex.join(cmd), flush=True)
    log.write(f"\n$ {shlex.join(cmd)}\n")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    lines = []
    for line in p.stdout:
        sys.stdout.write(line)
        log.write(line)
        lines.append(line)
    p.wait()
    return subprocess.CompletedProcess(cmd, p.returncode, "".join(lines), "")


def capture(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def make_base_image(tag: str, mirror: str, log) -> tuple[str, float]:
    """`tag` from debootstrap (bookworm minbase with python3.11 + venv), unless an image of that name exists."""
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0:
        return "existing image, not rebuilt", 0.0
    if shutil.which("debootstrap") is None:
        sys.exit(f"{tag}: no such image and no debootstrap to make it (apt-get install debootstrap, run as root)")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="a2qflow-base-") as d:
        root = Path(d) / "root"
        cmd = ["debootstrap", "--variant=minbase", f"--include={DEBIAN_PACKAGES}", "bookworm", str(root), mirror]
        if sh(cmd, log).returncode != 0:
            sys.exit("debootstrap failed (see the log above)")
        subprocess.run(["rm", "-rf", str(root / "var/cache/apt/archives"), str(root / "var/lib/apt/lists")])
        (root / "var/lib/apt/lists/partial").mkdir(parents=True)
        (root / "var/cache/apt/archives/partial").mkdir(parents=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imp = ["docker", "import", "-c", "ENV LANG=C.UTF-8", "-c", 'CMD ["python3.11"]', "-", tag]
        log.write(f"\n$ tar -C {root} -c . | {shlex.join(imp)}\n")
        r = subprocess.run(imp, stdin=tar.stdout, capture_output=True, text=True)
        tar.wait()
        if r.returncode != 0 or tar.returncode != 0:
            sys.exit(f"docker import failed: {r.stderr.strip()}")
    cmd_text = (f"debootstrap --variant=minbase --include={DEBIAN_PACKAGES} bookworm DIR {mirror}; "
                f"tar -C DIR -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD [\"python3.11\"]' - {tag}")
    return cmd_text, time.monotonic() - t0


def wheelhouse(folder: Path, log) -> tuple[str, float]:
    """Every wheel the image installs, downloaded by this host's pip into `folder`, with a PEP 503 simple index."""
    import tomllib

    t0 = time.monotonic()
    p = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = p["project"]["dependencies"] + p["project"]["optional-dependencies"]["test"] + p["build-system"]["requires"]
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--dest", str(folder), *reqs]
    if sh(cmd, log).returncode != 0:
        sys.exit("pip download failed (see the log above): this host's pip cannot reach the packages either")
    names: dict[str, list[str]] = {}
    for f in sorted(folder.iterdir()):
        if f.suffix == ".whl" or f.name.endswith(".tar.gz"):
            stem = f.name.split("-")[0] if f.suffix == ".whl" else f.name[:-7].rsplit("-", 1)[0]
            names.setdefault(re.sub(r"[-_.]+", "-", stem).lower(), []).append(f.name)
    for name, files in names.items():
        links = "".join(f'<a href="../../{n}">{n}</a>\n' for n in files)
        (folder / "simple" / name).mkdir(parents=True, exist_ok=True)
        (folder / "simple" / name / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    cmd_text = f"python -m pip download --dest {folder} <pyproject's dependencies, test extra, build requires>"
    return cmd_text + f"; a simple/ index over its {sum(map(len, names.values()))} files", time.monotonic() - t0


@contextmanager
def index_server(folder: Path, port: int):
    """Serve `folder` on http://127.0.0.1:PORT/ for the build's pip (with --network host); stopped on exit."""
    p = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(folder),
                          str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/simple/", timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            sys.exit(f"the index server on 127.0.0.1:{port} did not answer (port in use? pass --port)")
        yield f"http://127.0.0.1:{port}"
    finally:
        p.terminate()
        p.wait(timeout=10)


def build_command(args, url: str | None) -> list[str]:
    """docker/README.md's build command, with the build args for a local base image and a loopback index."""
    cmd = ["docker", "build", "--network", "host", "-f", "docker/Dockerfile", "-t", args.tag]
    if args.base_image != "python:3.11-slim-bookworm":
        cmd += ["--build-arg", f"BASE_IMAGE={args.base_image}"]
    if url:  # the local index alone: an empty PIP_EXTRA_INDEX_URL drops the default PyTorch CPU index
        cmd += ["--build-arg", f"PIP_INDEX_URL={url}/simple", "--build-arg", "PIP_EXTRA_INDEX_URL="]
    return cmd + ["."]


def test_command(args) -> list[str]:
    """docker/README.md's test command: as a non-root user, without network, `make test` in the image."""
    cmd = ["docker", "run", "--rm", "--user", args.user, "--network", "none"]
    if args.nice:
        return cmd + ["--entrypoint", "nice", args.tag, "-n", str(args.nice), "make", "test"]
    return cmd + ["--entrypoint", "make", args.tag, "test"]


def history_leaks(tag: str, build: list[str]) -> list[str]:
    """The build-arg values (index URLs) that `docker history` of the image shows; none, by the Dockerfile's design."""
    history = capture(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", tag])
    values = [a.partition("=")[2] for a in build if a.startswith("PIP_")]
    return [v for v in values if v and v in history]


def image_facts(tag: str) -> dict[str, str]:
    """Id, size, Python and torch versions of the built image."""
    py = "import sys, torch; print(sys.version.split()[0], torch.__version__)"
    pyver, torchver = capture(["docker", "run", "--rm", "--network", "none", "--entrypoint",
                               "/opt/a2qflow/.venv/bin/python", tag, "-c", py]).split()
    size = int(capture(["docker", "image", "inspect", "-f", "{{.Size}}", tag]))
    return {"id": capture(["docker", "image", "inspect", "-f", "{{.Id}}", tag]), "size": f"{size / 1e9:.2f} GB",
            "python": pyver, "torch": torchver}


def pytest_summary(out: str) -> tuple[str, list[str]]:
    """pytest's final summary line ("N passed, M skipped in S s") and its -ra short summary lines."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip() for line in out.splitlines()]
    final = [m.group(1) for line in lines if (m := SUMMARY.match(line))]
    short = [line for line in lines if re.match(r"^(FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", line)]
    return (final[-1] if final else "no pytest summary line (see the log)"), short


def fmt(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def markdown(facts: dict, steps: list[tuple[str, str, float]], summary: str, short: list[str], rc: int) -> str:
    lines = ["# `make test` inside the Docker image", "",
             f"Written by `benchmarks/docker_make_test.py`, started {facts['date']} (UTC), Docker daemon "
             f"{facts['daemon']}, host {facts['host']}. Full output: `benchmarks/results/docker_make_test.log`.", "",
             f"- Image `{facts['tag']}`: {facts['id']}, {facts['size']} (`docker image inspect`)",
             f"- In the image: Python {facts['python']}, torch {facts['torch']}",
             f"- Base image: `{facts['base']}`",
             f"- `docker history --no-trunc` of the image {facts['history']} (pip's index URLs)", "",
             f"**pytest: {summary}** (`make test` exit code {rc})", "", "| step | command | wall clock |",
             "|---|---|---|"]
    lines += [f"| {name} | `{cmd}` | {fmt(sec)} |" for name, cmd, sec in steps]
    if short:
        lines += ["", "pytest's short summary (`-ra`):", "", "```", *short, "```"]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tag", default="a2qflow")
    ap.add_argument("--base-image", default="a2qflow-base:bookworm",
                    help="made with debootstrap when missing; python:3.11-slim-bookworm with a registry")
    ap.add_argument("--mirror", default="http://deb.debian.org/debian")
    ap.add_argument("--wheelhouse", type=Path, default=Path(tempfile.gettempdir()) / "a2qflow-wheelhouse",
                    help="where this host's pip downloads the image's wheels (kept: a re-run reuses them)")
    ap.add_argument("--no-index-server", action="store_true", help="build with the Dockerfile's default indexes")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--user", default="1000:1000")
    ap.add_argument("--nice", type=int, default=10, help="niceness of make test in the container (0: none)")
    return ap.parse_args(argv)


def build_and_test(args, log) -> tuple[dict, list, int, str]:
    """Steps 1-4; returns (facts, steps, make test's exit code, its output)."""
    steps = []
    cmd, sec = make_base_image(args.base_image, args.mirror, log)
    steps.append(("base image", cmd, sec))
    if not args.no_index_server:
        steps.append(("wheelhouse", *wheelhouse(args.wheelhouse, log)))
    server = nullcontext(None) if args.no_index_server else index_server(args.wheelhouse, args.port)
    with server as url:
        cmd = build_command(args, url)
        t0 = time.monotonic()
        b = sh(["nice", "-n", "10", *cmd], log, cwd=ROOT)
        steps.append(("build", shlex.join(cmd), time.monotonic() - t0))
    if b.returncode != 0:
        sys.exit("docker build failed (see the log)")
    facts = image_facts(args.tag)
    leaks = history_leaks(args.tag, cmd)
    facts["history"] = f"shows build-arg values {leaks}" if leaks else "shows no build-arg value"
    cmd = test_command(args)
    t0 = time.monotonic()
    t = sh(cmd, log)
    steps.append(("make test", shlex.join(cmd), time.monotonic() - t0))
    return facts, steps, t.returncode, t.stdout


def main(argv=None) -> int:
    args = parse_args(argv)
    r = subprocess.run(["docker", "info", "-f", "{{.ServerVersion}}"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"no Docker daemon answers (docker info: {r.stderr.strip()[:200]}); start dockerd first")
    RESULTS.mkdir(parents=True, exist_ok=True)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    with open(LOG, "w") as log:
        facts, steps, rc, out = build_and_test(args, log)
    summary, short = pytest_summary(out)
    facts.update(date=date, daemon=r.stdout.strip(), tag=args.tag, base=args.base_image,
                 host=f"{os.cpu_count()} cores")  # not nproc: it honours OMP_NUM_THREADS
    atomic_write_text(RESULTS / "docker_make_test.md", markdown(facts, steps, summary, short, rc))
    print(f"\n{summary}; written benchmarks/results/docker_make_test.md")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
