"""The README and the guides: relative links resolve, every ``qfl_qiskit.…`` name they mention exists, and the
README's quickstart sample has the columns the quickstart prints."""

from __future__ import annotations

import importlib
import re

import pytest

from .conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _anchor(title: str) -> str:
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: broken link {target}"
        if anchor and file.suffix == ".md":
            anchors = {_anchor(h) for h in re.findall(r"^#+ (.*)$", file.read_text(encoding="utf-8"), flags=re.M)}
            assert anchor in anchors, f"{page.name}: no heading for #{anchor} in {file.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_package_name_mentioned_exists(page):
    from qfl_qiskit.data.loaders import ENTRY_POINT_GROUP

    for name in set(re.findall(r"`(qfl_qiskit(?:\.\w+)+)", page.read_text(encoding="utf-8"))) - {ENTRY_POINT_GROUP}:
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                assert hasattr(obj, attr), f"{page.name}: {name} does not exist"
                obj = getattr(obj, attr)
            break
        else:
            pytest.fail(f"{page.name}: {name} does not import")


def test_the_readme_quickstart_sample_has_the_quickstart_columns():
    from qfl_qiskit.cli.train import comparison_table, noisy_table

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    fake = {"specs": {"train": {"name": "x"}}, "payload": {"models": []}}
    columns = [c.header for c in comparison_table(fake, title="t").columns]
    assert " ".join(columns) in re.sub(r" +", " ", readme), columns
    metrics = {"accuracy": 0.5, "macro_f1": 0.5, "macro_auc": 0.5}
    noisy = [c.header for c in noisy_table("qfl", {"exact": metrics, "noisy": metrics, "backend": "b", "shots": 1,
                                                   "calibration_time": None, "estimator_calls": 0,
                                                   "seconds": 0.0}).columns]
    assert " ".join(noisy) in re.sub(r" +", " ", readme), noisy
