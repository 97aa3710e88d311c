"""Documentation links: every relative link in README.md and docs/*.md points at a file that
exists and, for ``#anchor`` links into Markdown, at a heading there (GitHub's slug rules).
README.md stays short (the reference lives in docs/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 200

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)  # http:, https:, mailto:, …


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def text_lines(path: Path, keep_code: bool = False) -> list[str]:
    """The file's lines outside fenced code blocks; inline code spans removed unless keep_code
    (headings may contain code, links in code are not links)."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line if keep_code else INLINE_CODE.sub("", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text (links reduced to their words), lowercased,
    punctuation except '-' and '_' dropped, spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in text_lines(path, keep_code=True):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    return [m.group(1) for line in text_lines(path) for m in LINK.finditer(line)]


def test_headings_slug_like_github() -> None:
    assert slug("Sample store (schema version 1)") == "sample-store-schema-version-1"
    assert slug("`dime-pipeline pack`") == "dime-pipeline-pack"
    assert slug("Training: `dime-pipeline train`") == "training-dime-pipeline-train"
    assert slug("Multi-GPU training (DDP)") == "multi-gpu-training-ddp"
    assert slug("snake_case and [a link](x.md)") == "snake_case-and-a-link"


def test_the_files_are_there() -> None:
    assert (ROOT / "docs" / "README.md").is_file()
    assert len(markdown_files()) > 2


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        if not file_part:
            linked = path
        elif file_part.startswith("/"):  # GitHub: relative to the repository root
            linked = ROOT / file_part.lstrip("/")
        else:
            linked = path.parent / file_part
        if not linked.exists():
            broken.append(f"{target}: no such file or folder")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
    return broken


def test_broken_links_are_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n\n## A `code` heading\n", encoding="utf-8")
    page.write_text(
        "# Title\n\n[ok](other.md#a-code-heading) [ok](#title) [web](https://example.org/x#y)\n"
        "[gone](missing.md) [bad](other.md#nope) [bad](#nope) `[code](not-a-link.md)`\n"
        "```\n[fenced](not-a-link-either.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "missing.md: no such file or folder",
        "other.md#nope: no heading with anchor #nope in other.md",
        "#nope: no heading with anchor #nope in page.md",
    ]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    broken = broken_links(path)
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
