"""Every relative link in README.md and docs/*.md points at a file or folder of the repository."""

import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

# [text](target) and [text](target "title"); the target up to a space or the closing parenthesis
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def relative_links(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # not inside code blocks
    for target in LINK.findall(text):
        if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#"):
            yield target.split("#", 1)[0]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    missing = [t for t in relative_links(page) if t and not (page.parent / t).exists()]
    assert not missing, f"{page.name}: links to missing files: {missing}"
