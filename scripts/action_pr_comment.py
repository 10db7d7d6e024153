"""Keep one lockman comment on a pull request up to date (action.yml, ``command: review``).

Usage: ``python action_pr_comment.py BODY_FILE CHANGED`` with GITHUB_API_URL, GITHUB_REPOSITORY,
LOCKMAN_PR and GH_TOKEN in the environment. The comment is found by the marker its first line
carries, so each push edits it instead of adding another. CHANGED is ``true`` when the lock
differs from the base: otherwise nothing is posted, and a comment already there is edited to say
so (a stale table would mislead). Standard library only: it runs in the action's virtual
environment, before or without anything else.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

MARKER = "<!-- lockman:report -->"


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {os.environ['GH_TOKEN']}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _ours(api: str, repo: str, pr: str) -> int | None:
    """The id of the comment that carries the marker, or None."""
    page = 1
    while True:
        comments = _call("GET", f"{api}/repos/{repo}/issues/{pr}/comments?per_page=100&page={page}")
        for c in comments:
            if str(c.get("body", "")).startswith(MARKER):
                return int(c["id"])
        if len(comments) < 100:
            return None
        page += 1


def main(body_file: str, changed: str) -> int:
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    repo, pr = os.environ["GITHUB_REPOSITORY"], os.environ["LOCKMAN_PR"]
    if not pr.isdigit():
        print(f"lockman review: no pull request number ({pr!r}); run on pull_request", file=sys.stderr)
        return 2
    body = f"{MARKER}\n{Path(body_file).read_text()}"
    existing = _ours(api, repo, pr)
    if existing is not None:
        _call("PATCH", f"{api}/repos/{repo}/issues/comments/{existing}", {"body": body})
        print(f"lockman review: updated comment {existing}")
    elif changed == "true":
        made = _call("POST", f"{api}/repos/{repo}/issues/{pr}/comments", {"body": body})
        print(f"lockman review: posted comment {made['id']}")
    else:
        print("lockman review: the lock does not change; no comment")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
