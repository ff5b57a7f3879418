"""checkov's policy scan of what a cluster gets (both overlays rendered, k8s/tools/) and of the
image (deploy/Dockerfile), with the checks skipped in deploy/checkov.yaml and in the objects'
annotations, each with its reason. checkov lives in a virtual environment of its own
(.venv-checkov, made by `make k8s-check`: its many pinned dependencies are not the project's)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy.k8s import K8S, OVERLAYS, ROOT, rendered_text

pytestmark = pytest.mark.k8s
CHECKOV = Path(os.environ.get("SHEQUN_CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is installed by `make k8s-check`")
def test_checkov_passes_on_the_manifests_and_the_dockerfile(tmp_path: Path) -> None:
    files = []
    for overlay in OVERLAYS:
        (tmp_path / f"{overlay}.yaml").write_text(rendered_text(overlay))
        files.append(tmp_path / f"{overlay}.yaml")
    files += [*sorted((K8S / "tools").glob("*.yaml")), ROOT / "deploy" / "Dockerfile"]
    scan = subprocess.run(
        [str(CHECKOV), "--config-file", str(ROOT / "deploy" / "checkov.yaml"),
         *(arg for f in files for arg in ("-f", str(f)))],
        capture_output=True, text=True, timeout=300,
        # Offline: no check for a newer checkov.
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
    )  # fmt: skip
    assert scan.returncode == 0, scan.stdout + scan.stderr
    # It did scan both frameworks.
    assert scan.stdout.count("Passed checks:") == 2, scan.stdout
