"""The repository's folders, for tests that read its files (chart, docs, CRDs, golden releases): found from
this file, so a test module may sit at any depth under tests/unit."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # tests/unit/support -> the repository
CHART = ROOT / "charts" / "helm-e2e"
DOCS = ROOT / "docs"
GOLDEN_RELEASES = ROOT / "tests" / "data" / "releases"
