"""Files written from code and checked in (the dashboards, the Kubernetes manifests): one way to
write them, and to check in `make lint` that they are what their code writes."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write_or_check(files: dict[Path, str], argv: list[str], command: str) -> int:
    """Write the files that differ; with --check, only say which differ (exit 1)."""
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is not what `{command}` writes")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
    return 0
