"""Every Python snippet in the README and the guides runs as written (from the repository root, as a user would)."""

from __future__ import annotations

import re

import pytest

from .conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SNIPPETS = [s for page in PAGES for s in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)]


def test_the_readme_has_python_snippets():
    assert SNIPPETS


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index, monkeypatch):
    monkeypatch.chdir(REPO)
    exec(compile(SNIPPETS[index], f"README.md snippet {index}", "exec"), {"__name__": "readme_snippet"})
