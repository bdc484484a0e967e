"""Change impact on a real git repository: only cells whose keys change are affected."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder.hostenv.apt import Mirrors
from builder.impact import Impact, affected
from builder.matrix.loader import load_matrix
from builder.pipeline import HostInputs
from builder.plan import expand
from tests.conftest import ROOT

HOST = HostInputs(Mirrors("http://mirror.invalid/debian", "http://mirror.invalid/debian-security"), None)
COPIED = ("matrix.yaml", "container_specs", "tests/infra", "builder", "elements", "README.md")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    for rel in COPIED:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, repo / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, repo / rel)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    return repo


@pytest.fixture
def clean(repo: Path) -> Path:
    git(repo, "checkout", "-q", "--", ".")
    git(repo, "clean", "-q", "-fd")
    return repo


def impact_of(repo: Path) -> Impact:
    return affected(repo, "HEAD", "matrix.yaml", load_matrix(repo / "matrix.yaml"), HOST)


def cells(impact: Impact, target: str = "oci") -> list[str]:
    return sorted(a.cell for a in impact.affected if a.target == target)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_no_change_affects_nothing(clean: Path) -> None:
    impact = impact_of(clean)
    assert impact.affected == [] and impact.touched == []


def test_readme_affects_nothing(clean: Path) -> None:
    (clean / "README.md").write_text("changed\n")
    impact = impact_of(clean)
    assert impact.affected == [] and impact.file_effects == {"README.md": "shapes no artifact"}


def test_flavor_entrypoint_affects_that_flavor_only(clean: Path) -> None:
    with (clean / "container_specs/flavors/postgresql/docker-entrypoint.sh").open("a") as f:
        f.write("# comment\n")
    impact = impact_of(clean)
    assert cells(impact) == ["postgresql-13", "postgresql-15", "postgresql-17"]
    assert not impact.everything


def test_matrix_version_change_affects_that_cell(clean: Path) -> None:
    edit(clean / "matrix.yaml", '"7.0": {base: "debian:bookworm", packages: [redis-server]}',
         '"7.0": {base: "debian:bookworm", packages: [redis-server, redis-tools]}')
    impact = impact_of(clean)
    assert cells(impact) == ["redis-7.0"]
    [entry] = [a for a in impact.affected if a.target == "oci"]
    assert any("packages" in r for r in entry.reasons)


def test_testinfra_change_reverifies_only_its_cells(clean: Path) -> None:
    with (clean / "tests/infra/flavors/test_redis.py").open("a") as f:
        f.write("# comment\n")
    impact = impact_of(clean)
    assert cells(impact) == ["redis-6.0", "redis-7.0", "redis-8.0", "valkey-8.1"]
    for entry in impact.affected:
        assert all(n.startswith("verify-") for n in entry.nodes), entry.nodes


def test_agent_change_rebuilds_no_datastore_node(clean: Path) -> None:
    with (clean / "container_specs/agent-build.Containerfile.j2").open("a") as f:
        f.write("{# comment #}\n")
    impact = impact_of(clean)
    assert len(cells(impact)) == 10
    changed = {n for a in impact.affected for n in a.nodes}
    assert not any(n.startswith(("datastore:", "exporter:", "base:")) for n in changed)
    # No pod runs Trove 26's agent (agent.runs_in_pod: false): no bundle is re-rendered or re-played.
    assert not any(n.startswith(("bundle:", "verify-bundle:")) for n in changed)
    assert "agent-tree" in changed


def test_shared_builder_code_affects_everything(clean: Path) -> None:
    with (clean / "builder/oci/engine.py").open("a") as f:
        f.write("# comment\n")
    impact = impact_of(clean)
    assert impact.everything
    assert "shapes every artifact" in impact.file_effects["builder/oci/engine.py"]
    assert {a.target for a in impact.affected} == {"oci", "vm", "baremetal"}


def test_element_change_affects_vm_targets_only(clean: Path) -> None:
    script = next((clean / "elements/guestforge-datastore/install.d").iterdir())
    with script.open("a") as f:
        f.write("# comment\n")
    impact = impact_of(clean)
    assert {a.target for a in impact.affected} == {"vm", "baremetal"} and len(impact.affected) == 20
    assert not any(n.startswith("guest-base:") for a in impact.affected for n in a.nodes)


def test_element_readme_affects_nothing(clean: Path) -> None:
    with (clean / "elements/guestforge-datastore/README.rst").open("a") as f:
        f.write("\nmore\n")
    assert impact_of(clean).affected == []


def test_agent_environment_edit_makes_every_guest_image_stale(clean: Path) -> None:
    """``builder/vm/dib.py`` writes ``environment()`` into the guest's unit: no hand-kept list names
    ``builder/agent/config.py`` for the guest base, its import closure does."""
    edit(clean / "builder/agent/config.py", '"LC_ALL": "C",', '"LC_ALL": "C", "GF_EDITED": "1",')
    impact = impact_of(clean)
    every = sorted(c.name for c in expand(load_matrix(clean / "matrix.yaml")))
    assert cells(impact, "vm") == every and cells(impact, "baremetal") == every
    reasons = {r for a in impact.affected if a.target == "vm" for r in a.reasons}
    assert any(r.startswith("guest-base:") and "code builder/agent/config.py changed" in r for r in reasons), reasons


def test_scheduler_and_cli_edits_change_no_key(clean: Path) -> None:
    for rel in ("builder/graph/execute.py", "builder/cli/main.py", "builder/session.py", "builder/graph/kinds.py"):
        with (clean / rel).open("a") as f:
            f.write("# a comment\n")
    impact = impact_of(clean)
    assert impact.affected == [] and not impact.everything
