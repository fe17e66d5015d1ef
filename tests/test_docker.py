"""docker/Dockerfile stays consistent with what CI exercises, without a Docker engine: it installs through the
Makefile target CI runs, copies every package pyproject.toml declares, and its entrypoint is the console script.
The image's promises (pinned Debian release, CPU-only torch, every yowasp tool precompiled into a cache any user can
read, run-time caches in a writable place, dependency layer apart from the source, a lean build context, tests
inside) are checked statically here; `test_image_builds_and_runs_the_flow_as_a_non_root_user` builds and runs the
image for real where a Docker daemon answers, and is skipped with the reason elsewhere."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIP_ARGS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS")  # the build stage's ARGs, pip's own variables


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in (ROOT / "docker/Dockerfile").read_text().splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        ins, _, args = buf.partition(" ")
        out.append((ins.upper(), args.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a line continuation"
    return out


def make_targets() -> dict[str, list[str]]:
    """target -> prerequisites, from the Makefile's rule lines."""
    rules = {}
    for line in (ROOT / "Makefile").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.$()/-]+)\s*:(?!=)\s*(.*)$", line)
        if m and not line.startswith("\t"):
            rules[m.group(1)] = m.group(2).split()
    return rules


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def global_args() -> dict[str, str]:
    """The ARGs declared before the first FROM (usable in FROM lines only): name -> default."""
    out = {}
    for i, a in dockerfile():
        if i == "FROM":
            return out
        assert i == "ARG", f"{i} before the first FROM"
        out[a.partition("=")[0]] = a.partition("=")[2]
    return out


def test_base_image_pins_python_311_slim_on_a_debian_release_and_meets_requires_python():
    """The default base is the official image on a pinned Debian release; BASE_IMAGE overrides it for a user with no
    registry (a debootstrap-made bookworm, docker/README.md), and is the only ARG before the first FROM."""
    ins = dockerfile()
    # the floating python:3.11-slim tag moved from bookworm to trixie (g++ 14, no libtinfo5 for Vitis)
    assert global_args() == {"BASE_IMAGE": "python:3.11-slim-bookworm"}
    froms = [a for i, a in ins if i == "FROM"]
    assert froms[0] == "${BASE_IMAGE} AS base"
    assert all(a.split()[0] == "base" for a in froms[1:])
    doc = (ROOT / "docker/README.md").read_text()
    assert "--build-arg BASE_IMAGE=" in doc and "debootstrap --variant=minbase" in doc
    req = pyproject()["project"]["requires-python"]
    assert req == ">=3.11"  # 3.11.0 .. 3.11.3 lack tarfile's "data" filter: test_point_archives_unpack_on_3_11_0


def stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """(stage name or "" for the unnamed final one, its instructions) in file order."""
    out: list = []
    for i, a in dockerfile()[len(global_args()):]:
        if i == "FROM":
            words = a.split()
            out.append((words[2] if len(words) == 3 and words[1].upper() == "AS" else "", []))
        out[-1][1].append((i, a))
    return out


def test_build_args_stay_in_the_build_stage_and_out_of_the_image_history():
    """`docker history` lists the final stage's instructions with the build args they saw: so the final stage must
    declare no ARG and run nothing; it copies what the build stage made. BASE_IMAGE, declared before the first FROM,
    is seen by FROM lines only (no stage re-declares it)."""
    st = stages()
    final = st[-1][1]
    assert st[-1][0] == "" and final[0] == ("FROM", "base")
    assert not [a for i, a in final if i in ("ARG", "RUN")]
    args = {a.partition("=")[0] for name, ins in st for i, a in ins if i == "ARG"}
    assert args == set(PIP_ARGS)
    assert all(name == "build" for name, ins in st for i, _ in ins if i == "ARG")
    base = dict(st)["base"]
    assert not [a for i, a in base if i == "ARG" or any(k in a for k in args)]
    froms = {a.split()[0].partition("=")[2] for i, a in final if i == "COPY" and a.startswith("--from=")}
    assert froms == {"build"}
    copied = {a.split()[1] for i, a in final if i == "COPY" and a.startswith("--from=")}
    assert copied == {"/opt/yowasp-cache", "/opt/a2qflow/.venv"}


def test_every_make_call_uses_a_real_target_and_install_is_what_ci_runs():
    targets = make_targets()
    runs = [a for i, a in dockerfile() if i == "RUN"]
    commands = [c.split() for r in runs for c in re.split(r"&&|;|\|\|", r)]
    used = {a for c in commands if c and c[0] == "make" for a in c[1:] if "=" not in a and not a.startswith("-")}
    assert used, "the Dockerfile must install through the Makefile"
    assert used <= set(targets), f"unknown make targets {used - set(targets)}"
    assert "install" in used
    # CI: .ci/run -> make test, and test depends on install: the image runs exactly CI's install step
    ci = (ROOT / ".ci/run").read_text()
    assert re.search(r"^\s*make test\b", ci, re.M)
    assert "install" in targets["test"]
    # no pip install outside the Makefile (the image must not drift from CI's dependency set)
    assert not any(re.search(r"\bpip\d?\s+install\b", r) for r in runs)


def test_make_install_dry_run_resolves(tmp_path):
    """`make -n install` in a copy of the project: the recipe exists and calls pip on this pyproject."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed; the Makefile (and the Dockerfile) need it")
    for f in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / f, tmp_path / f)
    r = subprocess.run([make, "-n", "install", "PYTHON=python3.11"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "python3.11 -m venv .venv" in r.stdout and "pip install" in r.stdout and ".[test]" in r.stdout


def test_copies_every_declared_package_and_the_files_pip_needs():
    copies = [a.split() for i, a in dockerfile() if i == "COPY" and not a.startswith("--from=")]
    sources = {s.rstrip("/") for c in copies for s in c[:-1] if not s.startswith("--")}
    missing = [s for s in sources if not (ROOT / s).exists()]
    assert not missing, f"COPY sources missing from the repository: {missing}"
    top_packages = {p.split(".")[0] for p in pyproject()["tool"]["setuptools"]["packages"]}
    assert top_packages <= sources, f"packages not copied into the image: {top_packages - sources}"
    assert {"pyproject.toml", "Makefile", pyproject()["project"]["readme"]} <= sources


def test_entrypoint_is_the_declared_console_script_in_the_make_venv():
    ins = dict((i, a) for i, a in dockerfile())
    workdir = [a for i, a in dockerfile() if i == "WORKDIR"][-1]
    import json

    entry = json.loads(ins["ENTRYPOINT"])
    scripts = pyproject()["project"]["scripts"]
    venv = re.search(r"^VENV\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert entry == [f"{workdir}/{venv}/bin/a2qflow"] and "a2qflow" in scripts
    assert scripts["a2qflow"] == "a2qflow.flows.cli:main"
    # and that console script works in the venv the same target created here
    r = subprocess.run([str(ROOT / venv / "bin/a2qflow"), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "run" in r.stdout and "sweep" in r.stdout


def test_system_packages_cover_the_open_tools_needs():
    runs = " ".join(a for i, a in dockerfile() if i == "RUN")
    apt = re.search(r"apt-get install ([^&]+)", runs).group(1).split()
    assert {"g++", "make", "perl"} <= set(apt)  # C-sim; Verilator's generated build needs make + perl
    # the yowasp tools the image pre-compiles are the ones the project installs
    for tool in re.findall(r"\.venv/bin/(yowasp-[\w-]+)", runs):
        assert (ROOT / ".venv/bin" / tool).exists(), tool


def test_outputs_volume_and_docs():
    ins = dockerfile()
    assert any(i == "VOLUME" and "/runs" in a for i, a in ins)
    doc = (ROOT / "docker/README.md").read_text()
    for needle in ("docker build -f docker/Dockerfile", "-v", "/runs", "vitis_hls", "vivado", "settings64.sh"):
        assert needle in doc, needle


# ------------------------------------------------------------------------------------------------ image promises

YOWASP_TOOLS = ("yosys", "nextpnr-ice40", "nextpnr-ecp5", "icepack", "ecppack")


def env() -> dict[str, str]:
    out = {}
    for i, a in dockerfile():
        if i == "ENV":
            for m in re.finditer(r"(\w+)=(\S+)", a):
                out[m.group(1)] = m.group(2)
    return out


def test_all_five_yowasp_tools_are_precompiled_into_a_cache_every_user_can_read():
    runs = " ".join(a for i, a in dockerfile() if i == "RUN")
    for tool in YOWASP_TOOLS:  # what hw/synth/yosys.py and hw/synth/bitstream.py run
        assert f".venv/bin/yowasp-{tool} " in runs, tool
        assert tool in re.search(r"for t in ([^;]+);", runs).group(1), f"{tool}: not checked in the cache"
    assert env()["YOWASP_CACHE_DIR"] == "/opt/yowasp-cache"
    assert 'chmod -R a+rX "$YOWASP_CACHE_DIR"' in runs
    used = set(re.findall(r"run_tool\(\s*\"yowasp-([\w-]+)\"", (ROOT / "hw/synth/bitstream.py").read_text()
                          + (ROOT / "hw/synth/yosys.py").read_text()))
    assert used and used <= set(YOWASP_TOOLS), used


def test_run_time_caches_are_writable_by_any_user():
    e = env()
    for key in ("A2QFLOW_CACHE", "XDG_CACHE_HOME", "MPLCONFIGDIR", "HYPOTHESIS_STORAGE_DIRECTORY"):
        assert e[key].startswith("/tmp/"), key
    # a --user without a passwd entry has HOME=/ (read-only); Ray's sweep executor writes ~/.ray/auth_token
    assert e["HOME"] == "/tmp"
    # make test as any --user: pytest's cache (in the read-only /opt/a2qflow by default) goes under /tmp too
    assert 'PYTEST_ADDOPTS="-o cache_dir=/tmp/.pytest_cache"' in (ROOT / "docker/Dockerfile").read_text()
    # a2qflow's one cache folder (C-sim precompiled header, Verilator builds) honours A2QFLOW_CACHE
    import os

    from a2qflow.hw.files import cache_dir

    old = os.environ.get("A2QFLOW_CACHE")
    os.environ["A2QFLOW_CACHE"] = e["A2QFLOW_CACHE"]
    try:
        assert cache_dir("pch") == Path(e["A2QFLOW_CACHE"], "pch")
    finally:
        if old is None:
            del os.environ["A2QFLOW_CACHE"]
        else:
            os.environ["A2QFLOW_CACHE"] = old


def _cuda_check_code() -> str:
    runs = [a for i, a in dockerfile() if i == "RUN" and "torch.version.cuda" in a]
    assert len(runs) == 1, "the build must check torch.version.cuda once"
    return re.search(r'python -c "(.*?)"(?:\s|$)', runs[0]).group(1)


@pytest.mark.parametrize("cuda, fails", [("12.1", True), (None, False)])
def test_build_fails_when_pip_installed_a_cuda_torch(tmp_path, cuda, fails):
    """The Dockerfile's own check, run against a stand-in torch module: a CUDA build stops the image build."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        f"import types\n__version__ = '2.13.0'\nversion = types.SimpleNamespace(cuda={cuda!r})\n")
    import os
    import sys

    r = subprocess.run([sys.executable, "-c", _cuda_check_code()], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert (r.returncode != 0) == fails, r.stderr
    if fails:
        assert "CUDA build" in r.stderr


def test_dependencies_are_installed_in_a_layer_before_the_source_is_copied():
    ins = dockerfile()
    deps = next(k for k, (i, a) in enumerate(ins) if i == "RUN" and "make deps" in a)
    install = next(k for k, (i, a) in enumerate(ins) if i == "RUN" and "make install" in a)
    copies_before = [a.split()[:-1] for i, a in ins[:deps] if i == "COPY"]
    assert {s for c in copies_before for s in c} <= {"pyproject.toml", "Makefile", "README.md"}
    packages = {p.split(".")[0] for p in pyproject()["tool"]["setuptools"]["packages"]}
    source_copies = [k for k, (i, a) in enumerate(ins) if i == "COPY" and a.split()[0] in packages | {"training", "hw",
                                                                                                     "flows"}]
    assert deps < min(source_copies) < install


def test_make_deps_installs_exactly_the_declared_dependencies(tmp_path):
    """`make deps` writes the requirement list from pyproject.toml alone (no source needed) and installs it."""
    for f in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / f, tmp_path / f)
    r = subprocess.run(["make", "-n", "deps", "PYTHON=python3.11"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines() if "tomllib" in l)
    (tmp_path / ".venv").mkdir()
    import sys

    cmd = line.replace(".venv/bin/python", sys.executable, 1)
    subprocess.run(["sh", "-c", cmd], cwd=tmp_path, check=True)
    reqs = (tmp_path / ".venv/requirements.txt").read_text().split()
    p = pyproject()["project"]
    assert reqs == p["dependencies"] + p["optional-dependencies"]["test"]
    assert "pip install -q -r .venv/requirements.txt" in r.stdout


def test_pip_index_is_an_overridable_build_arg_not_baked_into_the_image():
    """Offline / mirrored builds override the index by --build-arg; the default stays the PyTorch CPU index."""
    args = dict((a.partition("=")[0], a.partition("=")[2]) for i, a in dockerfile() if i == "ARG")
    assert args["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert args["PIP_INDEX_URL"] == "" and args["PIP_FIND_LINKS"] == ""  # unset unless given: pip's own defaults
    assert not set(PIP_ARGS) & set(env())


def test_build_context_leaves_out_venv_runs_and_git():
    ignore = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
              if l.strip() and not l.strip().startswith("#")]
    for entry in (".venv", "runs", ".git", "build", "**/__pycache__"):
        assert entry in ignore, entry
    copies = {s.rstrip("/") for i, a in dockerfile() if i == "COPY" for s in a.split()[:-1]}
    assert not copies & {e.rstrip("/") for e in ignore}, "a copied path is excluded from the build context"
    assert ".dockerignore" in copies  # so this test also runs (and passes) inside the image


def test_tests_are_in_the_image_and_git_is_not():
    copies = {s.rstrip("/") for i, a in dockerfile() if i == "COPY" for s in a.split()[:-1]}
    assert {"tests", ".ci", "docker"} <= copies  # make test in the image: the suite and what test_docker reads
    runs = " ".join(a for i, a in dockerfile() if i == "RUN")
    apt = re.search(r"apt-get install ([^&]+)", runs).group(1).split()
    assert "git" not in apt
    doc = (ROOT / "docker/README.md").read_text()
    assert 'docker run --rm --user "$(id -u):$(id -g)" --network none --entrypoint make a2qflow test' in doc


def build_args(environ) -> list[str]:
    """The Dockerfile's pip build args taken from the environment, only where they are http(s) URLs: the build
    runs in the daemon, where a path on this host (a find-links folder, a file:// index) means nothing, and
    forwarding it would put a host path into the build. A2QFLOW_BASE_IMAGE (an image name, e.g. a debootstrap-made
    bookworm where no registry answers) becomes BASE_IMAGE."""
    out = []
    if environ.get("A2QFLOW_BASE_IMAGE"):
        out += ["--build-arg", f"BASE_IMAGE={environ['A2QFLOW_BASE_IMAGE']}"]
    for key in PIP_ARGS:
        urls = [u for u in environ.get(key, "").split() if re.match(r"https?://", u)]
        if urls:
            out += ["--build-arg", f"{key}={' '.join(urls)}"]
    return out


def test_the_host_build_forwards_only_urls_never_host_paths():
    env = {"PIP_FIND_LINKS": "/home/me/wheels file:///opt/pypi http://127.0.0.1:8765/wheels/",
           "PIP_EXTRA_INDEX_URL": "/srv/simple", "PIP_INDEX_URL": "http://mirror/simple"}
    assert build_args(env) == ["--build-arg", "PIP_INDEX_URL=http://mirror/simple",
                               "--build-arg", "PIP_FIND_LINKS=http://127.0.0.1:8765/wheels/"]
    assert build_args({}) == []
    base = {"A2QFLOW_BASE_IMAGE": "a2qflow-base:bookworm"}
    assert build_args(base) == ["--build-arg", "BASE_IMAGE=a2qflow-base:bookworm"]


def test_point_archives_unpack_on_3_11_0(tmp_path, monkeypatch):
    """Without tarfile's "data" filter (Python 3.11.0 .. 3.11.3, e.g. Debian 12's 3.11.2) a point folder still
    round-trips, and an archive with a link out of the folder or a path escaping it is refused."""
    import io
    import tarfile

    from a2qflow.flows.executors import pack_dir, unpack_into
    from a2qflow.hw.errors import A2QFlowError

    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    src = tmp_path / "point"
    (src / "build").mkdir(parents=True)
    (src / "build" / "plan.json").write_text("{}")
    (src / "run.json").write_text("[1]")
    unpack_into(pack_dir(src), tmp_path / "copy")
    assert (tmp_path / "copy" / "build" / "plan.json").read_text() == "{}"
    assert (tmp_path / "copy" / "run.json").read_text() == "[1]"
    for name, kind in (("../escape.txt", tarfile.REGTYPE), ("link", tarfile.SYMTYPE), ("/abs.txt", tarfile.REGTYPE)):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            tar.addfile(info, io.BytesIO(b""))
        with pytest.raises(A2QFlowError, match="is not a plain file inside the point folder"):
            unpack_into(buf.getvalue(), tmp_path / "bad")
        assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "bad").exists()


def _docker_unavailable() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client on PATH"
    try:
        r = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"docker info failed: {e}"
    if r.returncode != 0:
        return f"no Docker daemon reachable (docker info: {(r.stderr or r.stdout).strip().splitlines()[-1][:120]})"
    return None


@pytest.mark.slow
def test_image_builds_and_runs_the_flow_as_a_non_root_user(tmp_path):
    """Build the image and run train -> compile -> hls -> csim -> rtl -> bitstream as uid 1000 without network:
    the outputs exist and belong to that user (no write into /opt or / at run time)."""
    why = _docker_unavailable()
    if why:
        pytest.skip(why)
    tag = "a2qflow-test:latest"
    # behind a mirror / offline: the Dockerfile's pip build args, taken from the environment (docker/README.md)
    import os

    args = build_args(os.environ)
    net = ["--network", "host"] if args else []
    b = subprocess.run(["docker", "build", "-q", *net, *args, "-f", "docker/Dockerfile", "-t", tag, "."], cwd=ROOT,
                       capture_output=True, text=True, timeout=3600)
    assert b.returncode == 0, b.stderr[-2000:]
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o777)
    r = subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "1000:1000", "-v", f"{runs}:/runs",
                        tag, "run", "flows/configs/digits_mlp.yaml", "--out", "/runs/demo", "--no-progress",
                        "--stages", "csim,bitstream"], capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr[-2000:]
    for f in ("train/model.onnx", "build/plan.json", "build/csim/csim.json", "build/bitstream/bitstream.json"):
        p = runs / "demo" / f
        assert p.is_file(), f
        assert p.stat().st_uid == 1000, f
