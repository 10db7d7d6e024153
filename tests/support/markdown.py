"""Markdown as GitHub renders it, for tests of what lockman puts in PR bodies."""

from __future__ import annotations

import html
import re

import cmarkgfm
from cmarkgfm.cmark import Options


def gfm(markdown: str) -> str:
    """``markdown`` as GitHub renders it (cmark-gfm; raw HTML kept, so any that got through shows)."""
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


def visible(rendered: str) -> str:
    """The text a reader sees: tags dropped, entities decoded, the invisible word joiner gone."""
    return html.unescape(re.sub(r"<[^>]*>", "", rendered)).replace("\u2060", "")
