"""requirements.lock: exact, hashed, and in agreement with pyproject.toml, the Makefile and environment.yml.

Reads files only (no network, no resolver): the lock is made by `make lock` (uv pip compile).
"""

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
TORCH_PINS = {"torch": "2.14.1", "torchvision": "0.29.1", "torchaudio": "2.11.0"}
SHA256 = re.compile(r"--hash=sha256:([0-9a-f]{64})(?=\s|$)")


def _logical_lines(text):
    """Join backslash continuations and drop comments, as pip reads a requirements file."""
    out, buf = [], ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            out.append(buf.strip())
        buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def parse_lock(path=LOCK):
    """{canonical name: (Requirement, [sha256, ...])} for every entry of the lock."""
    entries = {}
    for line in _logical_lines(path.read_text()):
        assert not line.startswith("-"), f"option line in the lock: {line!r}"
        spec = line.split(" --hash", 1)[0].strip()
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name not in entries, f"{name} twice in the lock"
        hashes = SHA256.findall(line)
        entries[name] = (req, hashes)
    return entries


def locked_version(req):
    specs = list(req.specifier)
    assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
        f"{req}: not an exact pin"
    )
    return Version(specs[0].version)


def project_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    reqs += [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    return reqs


@pytest.fixture(scope="module")
def lock():
    return parse_lock()


def test_every_entry_is_an_exact_pin_with_a_hash(lock):
    assert len(lock) > 50, "the lock should hold the transitive closure, not just the direct deps"
    for name, (req, hashes) in lock.items():
        locked_version(req)
        assert req.url is None, f"{name}: a URL/path entry, not an index pin"
        assert hashes, f"{name}: no --hash=sha256: (pip --require-hashes would refuse the lock)"
    assert "avseld" not in lock, "the package itself is installed with `pip install --no-deps -e .`"


def test_pyproject_dependencies_are_locked_within_their_ranges(lock):
    reqs = project_requirements()
    assert any(canonicalize_name(r.name) == "pytest" for r in reqs), "dev extra not read"
    for r in reqs:
        if r.marker is not None and not r.marker.evaluate({"extra": "dev"}):
            continue
        name = canonicalize_name(r.name)
        assert name in lock, f"{r} (pyproject) is missing from requirements.lock: run `make lock`"
        version = locked_version(lock[name][0])
        assert r.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {name}=={version}, outside pyproject's {r}: run `make lock`"
        )


def test_torch_trio_pinned_exactly(lock):
    pyproject = {canonicalize_name(r.name): r for r in project_requirements()}
    for name, version in TORCH_PINS.items():
        assert str(pyproject[name].specifier) == f"=={version}", f"pyproject: {pyproject[name]}"
        assert locked_version(lock[name][0]) == Version(version), f"lock: {lock[name][0]}"


def test_makefile_installs_from_the_lock():
    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(STAMP\):.*\brequirements\.lock\b", text, re.M), "stamp must depend on the lock"
    assert re.search(r"^\$\(STAMP\):.*\bpyproject\.toml\b", text, re.M)
    assert "pip install --require-hashes -r requirements.lock" in text
    assert "pip install --no-deps -e ." in text
    assert re.search(r"^lock:", text, re.M), "`make lock` refreshes the lock"


def test_environment_yml_installs_the_lock_and_nothing_else(lock):
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip = dep["pip"]
        else:
            conda.append(dep)
    # conda supplies only the interpreter and pip; a conda-level package would not be the locked build
    names = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0] for d in conda}
    assert names == {"python", "pip"}, f"conda-level packages besides python/pip: {conda}"
    python = next(d for d in conda if d.startswith("python"))
    assert re.fullmatch(r"python\s*=\s*3\.11(\.\*)?", python), python
    assert pip is not None and "-r requirements.lock" in pip, "environment.yml must install the lock"
    for item in pip:
        if item.startswith("-"):
            # an editable (-e) in the same pip run as hashed requirements is refused by pip
            assert not item.startswith(("-e", "--editable")), item
            continue
        r = Requirement(item)
        name = canonicalize_name(r.name)
        assert name in lock and r.specifier.contains(locked_version(lock[name][0]), prereleases=True), (
            f"environment.yml asks for {r}, which the lock does not give"
        )
