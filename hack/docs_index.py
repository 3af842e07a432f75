"""The documentation site's home page (docs/index.md, not committed) from README.md: the same text, its
links made relative to docs/ (links to files outside docs/ become code spans: MkDocs would call them dead)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def relink(match: re.Match[str]) -> str:
    label, target = match.group(1), match.group(2)
    if target.startswith(("http://", "https://", "#")):
        return match.group(0)
    if target.startswith("docs/"):
        return f"[{label}]({target.removeprefix('docs/')})"
    return f"`{target}`" if label.strip("`") == target else f"{label} (`{target}`)"


def main() -> None:
    readme = (ROOT / "README.md").read_text()
    header = "<!-- generated from README.md by `make docs` (hack/docs_index.py): edit README.md -->\n"
    (ROOT / "docs" / "index.md").write_text(header + LINK.sub(relink, readme))


if __name__ == "__main__":
    main()
