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
module's test files run there with ``pytest -x`` under a per-mutant timeout: a failing run kills
the mutant, a passing one survives. Prints each survivor and a kill rate per module.

    python3 scripts/mutate.py                         # the default security modules
    python3 scripts/mutate.py lockman/signatures/rekor.py
    python3 scripts/mutate.py lockman/model/reference.py=tests/test_reference.py
    python3 scripts/mutate.py --list lockman/signatures/fulcio.py   # mutants only, no runs
    python3 scripts/mutate.py --no-registry          # skip test files that need docker-registry

Slow (one pytest run per mutant), so not part of CI: run it before closing an issue that touches
these modules and quote the figure.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SIG_UNIT = [
    "tests/test_signatures_keys.py",
    "tests/test_signatures_trust.py",
    "tests/test_signatures_rekor.py",
    "tests/test_signatures_entry_bodies.py",
    "tests/test_signatures_fulcio.py",
    "tests/test_signatures_policy.py",
    "tests/test_signatures_cosign.py",
    "tests/test_signatures_bundle.py",
    "tests/test_signature_check.py",
    "tests/test_signatures_checkpoint.py",
    "tests/test_signatures_timestamp.py",
    "tests/test_cosign_attestations.py",
    "tests/test_signatures_attestation.py",
    "tests/test_sigstore_conformance.py",
]
_SIG_REGISTRY = ["tests/test_signature_verify.py", "tests/test_signatures_rekor2_e2e.py"]


def _unlisted_signature_tests() -> list[str]:
    """Signature test files missing from the lists above: their kills would go unseen (issue 12's
    Rekor v2 tests were, and five killed mutants were reported as survivors)."""
    listed = set(_SIG_UNIT + _SIG_REGISTRY)
    found = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").glob("test_*.py")
        if p.name.startswith(("test_signature", "test_sigstore"))
    )
    return [t for t in found if t not in listed]


def _sig(first: str) -> list[str]:
    """The module's own test file first (``-x`` stops at the first failure), registry tests last."""
    return [first] + [t for t in _SIG_UNIT if t != first] + _SIG_REGISTRY


DEFAULT_TARGETS: dict[str, list[str]] = {
    "lockman/signatures/fulcio.py": _sig("tests/test_signatures_fulcio.py"),
    "lockman/signatures/bundle.py": _sig("tests/test_signatures_bundle.py"),
    "lockman/signatures/rekor.py": _sig("tests/test_signatures_rekor.py"),
    "lockman/signatures/checkpoint.py": _sig("tests/test_signatures_checkpoint.py"),
    "lockman/signatures/timestamp.py": _sig("tests/test_signatures_timestamp.py"),
    "lockman/signatures/keys.py": _sig("tests/test_signatures_keys.py"),
    "lockman/signatures/cosign.py": _sig("tests/test_signatures_cosign.py"),
    "lockman/signatures/attestation.py": _sig("tests/test_cosign_attestations.py"),
    "lockman/signatures/trust.py": _sig("tests/test_signatures_trust.py"),
    "lockman/signatures/policy.py": _sig("tests/test_signatures_policy.py"),
    "lockman/signatures/_common.py": _sig("tests/test_signatures_cosign.py"),
    "lockman/signatures/result.py": _sig("tests/test_signature_check.py"),
    "lockman/registry/auth.py": [
        "tests/test_auth.py",
        "tests/test_challenge.py",
        "tests/test_auth_policy.py",
        "tests/test_secrets.py",
        "tests/test_registry_auth.py",
        # The attacker's redirect (registry-backed): one test, not the whole hostile file.
        "tests/test_hostile.py::test_foreign_host_challenge_never_gets_the_registrys_credentials",
    ],
    "lockman/registry/challenge.py": [
        "tests/test_challenge.py",
        "tests/test_auth.py",
        "tests/test_registry_auth.py",
    ],
    "lockman/registry/credentials.py": [
        "tests/test_credentials.py",
        "tests/test_conformance.py",
        "tests/test_auth_policy.py",
        "tests/test_secrets.py",
    ],
    "lockman/model/reference.py": [
        "tests/test_reference.py",
        "tests/test_conformance.py",
        "tests/test_properties.py",
        "tests/test_registries_conf.py",
    ],
}

# Survivors looked at and found harmless, keyed by (module, operator, the mutant's description)
# so that line moves do not lose them. Each says why no input can tell the mutant apart, or why
# it only makes a check stricter. A survivor not listed here is a gap: kill it with a test.
EXPLAINED: dict[tuple[str, str, str], str] = {
    (
        "lockman/signatures/rekor.py",
        "continue",
        'continue under `if not line.startswith("\\u2014 ")`',
    ): "stricter: without it a note's non-signature"
    " lines are decoded as signatures too, and a note carrying one is refused",
    (
        "lockman/model/reference.py",
        "clause",
        "drop `text != text.strip()` from `text != text.strip() or any(c.isspace() for c in text)`",
    ): "subsumed: leading or trailing whitespace is whitespace, which the other clause refuses",
    (
        "lockman/model/reference.py",
        "clause",
        "drop `path != path.lower()` from `path != path.lower() and PATH_RE.fullmatch(path.lower())`",
    ): "equivalent: for an all-lower-case path the second clause is the failed PATH_RE match itself",
    (
        "lockman/registry/auth.py",
        "clause",
        "drop `isinstance(body, dict)` from "
        '`isinstance(body, dict) and isinstance(body.get("refresh_token"), str)`',
    ): "unreachable: a token was found with body.get, so body is a dict here",
    (
        "lockman/registry/auth.py",
        "clause",
        "drop `not repositories` from "
        '`challenge is None or challenge.scheme != "bearer" or not repositories`',
    ): "subsumed: no repositories means no missing scopes, and `if missing` then asks for nothing",
    ("lockman/registry/credentials.py", "clause", "drop `addr` from `addr and port.isdigit()`"):
    "unreachable: the host has two or more colons, so the text before the last one holds a colon",
    (
        "lockman/registry/credentials.py",
        "clause",
        "drop `isinstance(store, str)` from `isinstance(store, str) and store`",
    ): "equivalent: a non-string credsStore names no docker-credential-* on PATH, and an empty answer falls"
    " through to auths just the same",
    ("lockman/registry/credentials.py", "clause", "drop `store` from `isinstance(store, str) and store`"):
    "equivalent: an empty credsStore names no docker-credential- on PATH, and an empty answer falls"
    " through to auths just the same",
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
                        what = f"drop `{_first_line(src, operand)}` from `{_first_line(src, sub)}`"
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


def _scratch() -> Path:
    """A copy of the code and tests (testdata linked), so the worktree is never modified."""
    tmp = Path(tempfile.mkdtemp(prefix="lockman-mutate-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "lockman", tmp / "lockman", ignore=ignore)
    shutil.copytree(ROOT / "tests", tmp / "tests", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    (tmp / "testdata").symlink_to(ROOT / "testdata")
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


def _targets(specs: list[str]) -> dict[str, list[str]]:
    if not specs:
        return dict(DEFAULT_TARGETS)
    out: dict[str, list[str]] = {}
    for spec in specs:
        module, _, tests = spec.partition("=")
        if tests:
            out[module] = tests.split(",")
        elif module in DEFAULT_TARGETS:
            out[module] = DEFAULT_TARGETS[module]
        else:
            sys.exit(f"mutate.py: no default test files for {module}; give them as {module}=tests/a.py,...")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths, optionally MODULE=TEST,TEST")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per mutant (default 180)")
    parser.add_argument("--no-registry", action="store_true", help="skip test files marked registry")
    parser.add_argument("--only", type=int, action="append", help="run only mutants at this line")
    args = parser.parse_args(argv)

    targets = _targets(args.modules)
    unlisted = _unlisted_signature_tests()
    if unlisted:
        print(f"mutate.py: warning: signature tests not run for any module: {' '.join(unlisted)}", flush=True)
    summary: list[tuple[str, int, int, int]] = []
    tmp = None if args.list else _scratch()
    try:
        for module, tests in targets.items():
            tests = [t for t in tests if (ROOT / t.partition("::")[0]).exists()]  # a file or a test id
            if args.no_registry:
                tests = [t for t in tests if "mark.registry" not in (ROOT / t.partition("::")[0]).read_text()]
            found = [m for m in mutants(module) if not args.only or m.line in args.only]
            print(f"== {module}: {len(found)} mutants; tests: {' '.join(tests)}", flush=True)
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
