#!/usr/bin/env python3
"""Mutation testing for lockman's security checks: remove one check, see whether a test notices.

A small ``ast`` mutator of our own (mutmut and cosmic-ray mutate arithmetic and constants too;
we only want mutants that *remove a check*). Operators:

- ``raise``     a ``raise`` statement becomes ``pass``
- ``call``      a call statement (``verify_set(entry, root)``) is deleted
- ``clause``    one operand of an ``and``/``or`` in an ``if``/``while``/``assert`` test, or in the
                ``return`` of a function annotated ``-> bool``, is dropped
- ``true``      ``return False`` (or any ``return`` of a ``-> bool`` function) becomes ``return True``
- ``continue``  a ``continue`` (a loop's "skip this candidate") becomes ``pass``
- ``kwarg``     a ``require_*=`` / ``verify_*=`` / ``check_*=`` / ``strict*=`` argument becomes ``False``

Each mutant is written into a scratch copy of the worktree (never into the tree itself), and the
module's test files (found by its path: see ``tests_for``) run there with ``pytest -x`` under a
per-mutant timeout: a failing run kills the mutant, a passing one survives. Prints each survivor
and a kill rate per module.

    python3 scripts/mutate.py                         # the default security modules
    python3 scripts/mutate.py lockman/signatures/rekor.py
    python3 scripts/mutate.py lockman/model/reference.py=tests/unit/model/test_reference.py
    python3 scripts/mutate.py --list lockman/signatures/fulcio.py   # mutants only, no runs
    python3 scripts/mutate.py --no-registry          # only tests/unit and tests/conformance

Slow (one pytest run per mutant), so not part of CI: run it before closing an issue that touches
these modules and quote the figure.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_MODULES = [
    "lockman/signatures/fulcio.py",
    "lockman/signatures/bundle.py",
    "lockman/signatures/rekor.py",
    "lockman/signatures/checkpoint.py",
    "lockman/signatures/timestamp.py",
    "lockman/signatures/keys.py",
    "lockman/signatures/cosign.py",
    "lockman/signatures/attestation.py",
    "lockman/signatures/trust.py",
    "lockman/signatures/policy.py",
    "lockman/signatures/_common.py",
    "lockman/signatures/result.py",
    "lockman/registry/auth.py",
    "lockman/registry/challenge.py",
    "lockman/registry/credentials.py",
    "lockman/enforce/gate.py",
    "lockman/enforce/check.py",
    "lockman/enforce/options.py",
    "lockman/enforce/attestation.py",
    "lockman/model/reference.py",
]
"""The security modules run by default, one a line; their tests come from the layout."""


def _own(directory: Path, stem: str) -> list[Path]:
    """``test_<stem>.py`` then ``test_<stem>_*.py`` in ``directory``."""
    exact = directory / f"test_{stem}.py"
    return ([exact] if exact.is_file() else []) + sorted(directory.glob(f"test_{stem}_*.py"))


def tests_for(module: str, *, registry: bool = True) -> list[str]:
    """The test files that cover ``module`` (``lockman/<pkg>/<mod>.py``), derived from the layout.

    First its own unit tests (``tests/unit/<pkg>/test_<mod>.py``, then ``test_<mod>_*.py``: the
    first file runs alone, and most mutants die there), then the rest of its package's unit
    tests and tests/conformance (the peers' tables call across modules), then the same for
    ``tests/integration/<pkg>/`` unless ``registry`` is false. A module's tests are found by its
    path: nothing to keep in step by hand.
    """
    parts = Path(module).with_suffix("").parts[1:]  # without "lockman"
    pkg, stem = Path(*parts[:-1]), parts[-1].lstrip("_")
    tests = ROOT / "tests"
    unit, integration = tests / "unit" / pkg, tests / "integration" / pkg
    own = _own(unit, stem) + (_own(integration, stem) if registry else [])
    dirs = [unit, tests / "conformance"] + ([integration] if registry else [])
    rest = [f for d in dirs for f in sorted(d.glob("test_*.py")) if f not in own]
    return [str(f.relative_to(ROOT)) for f in own + rest]


# Survivors looked at and found harmless, keyed by (module, operator, the mutant's description)
# so that line moves do not lose them. Each says why no input can tell the mutant apart, or why
# it only makes a check stricter. A survivor not listed here is a gap: kill it with a test.
EXPLAINED: dict[tuple[str, str, str], str] = {
}

_GUARD_KWARGS = ("require_", "verify_", "check_", "strict")
_NOISE_CALLS = {"append", "extend", "debug", "info", "warning", "print"}


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int
    """Position in the module's mutant list (stable while the source does not change)."""
    op: str
    line: int
    what: str
    source: str
    """The whole mutated module."""


def _first_line(src: str, node: ast.AST) -> str:
    seg = ast.get_source_segment(src, node) or ast.unparse(node)
    line = seg.strip().splitlines()[0]
    return line if len(line) <= 90 else line[:87] + "..."


def _joined(src: str, node: ast.AST) -> str:
    """The node's source on one line (a test spread over lines, joined), shortened as above;
    a clause's first line alone would name a multi-line ``or`` by its first operand."""
    seg = ast.get_source_segment(src, node) or ast.unparse(node)
    line = re.sub(r"\s*\n\s*", " ", seg.strip())
    return line if len(line) <= 90 else line[:87] + "..."


def _bool_functions(tree: ast.AST) -> set[int]:
    """ids of ``return`` nodes that belong to a function annotated ``-> bool``."""
    out: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) and isinstance(fn.returns, ast.Name):
            if fn.returns.id != "bool":
                continue
            stack: list[ast.AST] = list(fn.body)
            while stack:
                node = stack.pop()
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
                    continue
                if isinstance(node, ast.Return):
                    out.add(id(node))
                stack.extend(ast.iter_child_nodes(node))
    return out


def _sites(tree: ast.Module, src: str) -> Iterator[tuple[str, int, str, ast.AST, object]]:
    """(op, line, description, node, replacement-spec) for every check-removing change."""
    bool_returns = _bool_functions(tree)
    guard: dict[int, str] = {}  # continue -> the if/except that holds it, to tell continues apart
    for node in ast.walk(tree):
        if isinstance(node, ast.If | ast.ExceptHandler):
            head = f"if {_first_line(src, node.test)}" if isinstance(node, ast.If) else (
                f"except {_first_line(src, node.type)}" if node.type else "except"
            )
            for child in node.body:
                if isinstance(child, ast.Continue):
                    guard[id(child)] = head
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise):
            yield "raise", node.lineno, _first_line(src, node), node, None
        elif isinstance(node, ast.Continue):
            where = guard.get(id(node))
            yield "continue", node.lineno, f"continue under `{where}`" if where else "continue", node, None
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await):
            call = node.value.value if isinstance(node.value, ast.Await) else node.value
            if not isinstance(call, ast.Call):
                continue
            name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            if name not in _NOISE_CALLS:
                yield "call", node.lineno, _first_line(src, node), node, None
        elif isinstance(node, ast.Return) and node.value is not None:
            if isinstance(node.value, ast.Constant) and node.value.value is True:
                continue
            is_false = isinstance(node.value, ast.Constant) and node.value.value is False
            if is_false or id(node) in bool_returns:
                yield "true", node.lineno, _first_line(src, node), node, None
        elif (
            isinstance(node, ast.keyword)
            and node.arg
            and node.arg.startswith(_GUARD_KWARGS)
            and not (isinstance(node.value, ast.Constant) and node.value.value is False)
        ):
            yield "kwarg", node.value.lineno, f"{node.arg}={_first_line(src, node.value)}", node, None
    # clause drops: BoolOps inside guard tests and bool returns
    for node in ast.walk(tree):
        tests: list[ast.AST] = []
        if isinstance(node, ast.If | ast.While | ast.Assert | ast.IfExp):
            tests.append(node.test)
        elif isinstance(node, ast.Return) and id(node) in bool_returns and node.value is not None:
            tests.append(node.value)
        for test in tests:
            for sub in ast.walk(test):
                if isinstance(sub, ast.BoolOp):
                    for i, operand in enumerate(sub.values):
                        what = f"drop `{_joined(src, operand)}` from `{_joined(src, sub)}`"
                        yield "clause", operand.lineno, what, sub, i


class _Apply(ast.NodeTransformer):
    def __init__(self, target: ast.AST, op: str, spec: object) -> None:
        self.target, self.op, self.spec = target, op, spec

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        return node

    def visit(self, node: ast.AST) -> ast.AST:
        if node is not self.target:
            return self.generic_visit(node)
        if self.op in ("raise", "continue", "call"):
            return ast.copy_location(ast.Pass(), node)
        if self.op == "true":
            assert isinstance(node, ast.Return)
            return ast.copy_location(ast.Return(value=ast.Constant(True)), node)
        if self.op == "kwarg":
            assert isinstance(node, ast.keyword)
            return ast.keyword(arg=node.arg, value=ast.Constant(False))
        assert isinstance(node, ast.BoolOp) and isinstance(self.spec, int)
        rest = [v for i, v in enumerate(node.values) if i != self.spec]
        return rest[0] if len(rest) == 1 else ast.BoolOp(op=node.op, values=rest)


def mutants(module: str) -> list[Mutant]:
    """Every check-removing mutant of ``module`` (a path relative to the repository root)."""
    src = (ROOT / module).read_text()
    tree = ast.parse(src)
    baseline = ast.unparse(tree)
    out: list[Mutant] = []
    seen: set[str] = set()
    for op, line, what, node, spec in _sites(tree, src):
        # Map the node to its twin in a fresh copy via its position in a walk.
        clone = copy.deepcopy(tree)
        twin = next(b for a, b in zip(ast.walk(tree), ast.walk(clone), strict=True) if a is node)
        mutated = ast.fix_missing_locations(_Apply(twin, op, spec).visit(clone))
        text = ast.unparse(mutated)
        if text == baseline or text in seen:
            continue  # no-op or duplicate
        seen.add(text)
        out.append(Mutant(module, len(out), op, line, what, text + "\n"))
    out.sort(key=lambda m: (m.line, m.op))
    return [Mutant(m.module, i, m.op, m.line, m.what, m.source) for i, m in enumerate(out)]


def _stale_explanations(module: str) -> list[tuple[str, str, str]]:
    """EXPLAINED keys of ``module`` that match none of its mutants (the code moved on)."""
    current = {(m.module, m.op, m.what) for m in mutants(module)}
    return [k for k in EXPLAINED if k[0] == module and k not in current]


def _scratch() -> Path:
    """A copy of the code and tests, so the worktree is never modified; everything else at the
    top (testdata/, README.md and docs/ that tests read, action.yml, ...) is linked; not .git, nor
    .hypothesis (a mutant's failing examples must not land in the worktree's database)."""
    tmp = Path(tempfile.mkdtemp(prefix="lockman-mutate-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "lockman", tmp / "lockman", ignore=ignore)
    shutil.copytree(ROOT / "tests", tmp / "tests", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    shutil.copy2(ROOT / "conftest.py", tmp / "conftest.py")  # registers the tests/support plugins
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".hypothesis") and not (tmp / entry.name).exists():
            (tmp / entry.name).symlink_to(entry)
    return tmp


def _pytest(tmp: Path, tests: list[str], timeout: float) -> str:
    """``killed``, ``survived`` or ``timeout``: one pytest run over ``tests``."""
    env = dict(os.environ, PYTHONPATH=str(tmp), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    try:
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "timeout"
    if proc.returncode == 0:
        return "survived"
    if proc.returncode in (4, 5):  # usage error, no tests: the run itself is wrong, not the mutant
        sys.exit(f"mutate.py: pytest could not run {tests} (exit {proc.returncode}):\n"
                 + proc.stdout.decode(errors="replace")[-2000:])
    # 1 (a test failed), 2 (collection broke: the mutant broke an import), 3: a test noticed.
    return "killed"


def _run(tmp: Path, tests: list[str], timeout: float) -> str:
    """The module's own test file first (most mutants die there, and one file collects fast),
    then the rest only if it passed."""
    first = _pytest(tmp, tests[:1], timeout)
    if first != "survived" or len(tests) == 1:
        return first
    return _pytest(tmp, tests[1:], timeout)


def _targets(specs: list[str], registry: bool) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs or DEFAULT_MODULES:
        module, _, tests = spec.partition("=")
        out[module] = tests.split(",") if tests else tests_for(module, registry=registry)
        if not out[module]:
            sys.exit(f"mutate.py: no tests under tests/unit or tests/integration for {module}; "
                     f"give them as {module}=tests/a.py,...")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths, optionally MODULE=TEST,TEST")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per mutant (default 180)")
    parser.add_argument("--no-registry", action="store_true", help="only tests/unit and tests/conformance")
    parser.add_argument("--only", type=int, action="append", help="run only mutants at this line")
    args = parser.parse_args(argv)

    targets = _targets(args.modules, registry=not args.no_registry)
    summary: list[tuple[str, int, int, int]] = []
    tmp = None if args.list else _scratch()
    try:
        for module, tests in targets.items():
            tests = [t for t in tests if (ROOT / t.partition("::")[0]).exists()]  # a file or a test id
            if args.no_registry:
                tests = [t for t in tests if not t.startswith(("tests/integration/", "tests/scenarios/"))]
            found = [m for m in mutants(module) if not args.only or m.line in args.only]
            print(f"== {module}: {len(found)} mutants; tests: {' '.join(tests)}", flush=True)
            for key in _stale_explanations(module):
                print(f"  STALE explanation (matches no mutant; remove it): {key[1]} {key[2]}", flush=True)
            if not tests and not args.list:
                print(f"  no test files left for {module}; skipped", flush=True)
                continue
            if args.list:
                for m in found:
                    print(f"  #{m.index} {module}:{m.line} [{m.op}] {m.what}")
                continue
            assert tmp is not None
            target = tmp / module
            original = target.read_text()
            started = time.monotonic()
            # Twice: on a loaded machine a registry-backed test may fail once for want of time.
            if _run(tmp, tests, args.timeout) != "survived" and _run(tmp, tests, args.timeout) != "survived":
                print(f"  the unmutated tests fail for {module}; fix that first", flush=True)
                return 2
            killed = explained = 0
            try:
                for m in found:
                    target.write_text(m.source)
                    verdict = _run(tmp, tests, args.timeout)
                    if verdict != "survived":
                        killed += 1
                        continue
                    why = EXPLAINED.get((m.module, m.op, m.what))
                    if why:
                        explained += 1
                        print(f"  explained #{m.index} {module}:{m.line} [{m.op}] {m.what}", flush=True)
                        print(f"      {why}", flush=True)
                    else:
                        print(f"  SURVIVED #{m.index} {module}:{m.line} [{m.op}] {m.what}", flush=True)
            finally:
                target.write_text(original)
            rate = 100.0 * killed / len(found) if found else 100.0
            print(
                f"  {module}: {killed}/{len(found)} killed ({rate:.1f}%), {explained} explained, "
                f"{len(found) - killed - explained} unexplained, in {time.monotonic() - started:.0f}s",
                flush=True,
            )
            summary.append((module, killed, explained, len(found)))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if summary:
        print("\nkill rate per module (killed/mutants, then explained survivors):")
        for module, killed, expl, total in summary:
            rate = 100.0 * killed / total if total else 100.0
            print(f"  {killed:4d}/{total:<4d} {rate:5.1f}%  +{expl} explained  {module}")
        k, e, t = (sum(s[i] for s in summary) for i in (1, 2, 3))
        print(f"  {k:4d}/{t:<4d} {100.0 * k / t if t else 100.0:5.1f}%  +{e} explained  all")
        return 1 if k + e < t else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
