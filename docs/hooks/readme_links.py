"""MkDocs hook: README.md's links, checked with the site's.

README.md is the repository's first page on GitHub, not a page of the site, so MkDocs does not
read it. This hook does, after the build: every relative link must name a file of the
repository, and an anchor (``docs/transitions.md#per-transition``, ``#two-commands``) a heading
of that Markdown file as GitHub names it. A broken link is a warning, which ``mkdocs build
--strict`` (``make lint``) turns into a failure.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.plugins import get_plugin_logger

log = get_plugin_logger(__name__)

LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6} (.+?)\s*$", re.MULTILINE)


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file (code blocks left out)."""
    found: set[str] = set()
    for title in HEADING.findall(FENCE.sub("", markdown)):
        text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", title).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in found:
            n += 1
            anchor = f"{slug}-{n}"
        found.add(anchor)
    return found


def on_post_build(config: Any, **kwargs: Any) -> None:
    root = Path(config.config_file_path).parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    for target in LINK.findall(FENCE.sub("", readme)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        path, _, anchor = target.partition("#")
        file = root / path if path else root / "README.md"
        if not file.is_file():
            log.warning("README.md links to %r: no such file in the repository", target)
        elif anchor and anchor not in github_anchors(file.read_text(encoding="utf-8")):
            log.warning("README.md links to %r: %s has no heading %r", target, file.name, anchor)
