"""The README's 'Wrapping your own algorithm' example runs as written."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO


def readme_block(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    section = text.split(f"## {heading}", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_wrapping_your_own_algorithm_example_runs(tmp_path):
    code = readme_block("Wrapping your own algorithm")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"top-1 \d\.\d{3}, balanced \d\.\d{3}", proc.stdout), proc.stdout
    assert (tmp_path / "runs" / "leaf_mymatch_digits_40_0" / "latest_model.pth").exists()


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_readme_is_short_and_its_docs_links_resolve():
    readme = REPO / "README.md"
    assert readme.stat().st_size < 8 * 1024
    pages = [readme, *sorted((REPO / "docs").glob("*.md"))]
    linked = set()
    for page in pages:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if "://" in target:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            assert file.exists(), f"{page.name}: broken link {target}"
            linked.add(file)
            if anchor and file.suffix == ".md":
                assert anchor in _anchors(file.read_text()), f"{page.name}: no heading for {target}"
    for page in pages[1:]:
        assert page.resolve() in linked, f"{page.name} is not linked from any page"
    readme_links = {(REPO / t.split("#")[0]).resolve() for t in re.findall(r"\]\((docs/[^)\s]+)\)", readme.read_text())}
    for page in pages[1:]:
        assert page.resolve() in readme_links, f"{page.name} is not linked from the README"
