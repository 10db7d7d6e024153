"""The documentation's own promises: every link lands, the CLI reference is current, the README is short.

Links and anchors are checked as GitHub renders them (its heading slugs: lower case, punctuation
but ``-`` and ``_`` dropped, spaces to ``-``, ``-1``, ``-2`` for repeats), so a page that moves
or a heading that is renamed fails here instead of leaving a dead link.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.support.paths import ROOT

PAGES = sorted(
    [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "benchmarks" / "README.md", *(ROOT / "docs").glob("*.md")]
)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The page without its fenced code blocks (a ``#`` there is a comment, a ``](`` is code)."""
    return re.sub(r"(?ms)^```.*?^```", "", text)


def slugs(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(text).splitlines():
        m = re.match(r"#{1,6} (.*)", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_slugs_follow_githubs_rules() -> None:
    text = "# A `b.c`: d, e\n\n## Results (2026-11-29)\n\n## Results (2026-11-29)\n```\n# not a heading\n```\n"
    assert slugs(text) == {"a-bc-d-e", "results-2026-11-29", "results-2026-11-29-1"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_lands(page: Path) -> None:
    broken = []
    for target in _LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:: not ours to check offline
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in slugs(dest.read_text())):
            broken.append(f"{target}: no such heading")
    assert broken == [], f"{page.relative_to(ROOT)}: {broken}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, page.name


def test_readme_is_a_landing_page() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_cli_reference_is_generated_from_the_current_help() -> None:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (ROOT / "docs" / "cli.md").read_text() == gen.render(), "run python3 scripts/gen_cli_docs.py"


def test_the_error_classes_the_docs_name_exist_with_their_fields() -> None:
    import lockman.errors as errors

    page = (ROOT / "docs" / "environment.md").read_text()
    paragraph = page.split("Which kind of failure it was is never read from the message", 1)[1].split("\n\n")[0]
    names = re.findall(r"`(\w+)`", paragraph)
    classes = [n for n in names if n[0].isupper()]
    fields = [n for n in names if n[0].islower() and n != "lockman"]
    assert classes and fields
    for name in classes:
        assert issubclass(getattr(errors, name), errors.LockmanError), name
    sample = errors.DigestMismatch("x")
    for field in fields:
        assert hasattr(sample, field), field


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_full_digests_in_examples_are_well_formed(page: Path) -> None:
    """A digest written out in full must be one lockman would accept (short forms are 7 or 12 hex)."""
    from lockman.model.digest import digest_problem

    for digest in re.findall(r"sha256:[0-9a-f]{13,}", page.read_text()):
        assert digest_problem(digest) is None, digest
