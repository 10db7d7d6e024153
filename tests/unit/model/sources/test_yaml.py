"""Workflows and compose files: the images they name, in place; hostile YAML is bad input, fast."""

from __future__ import annotations

import time

import pytest

from lockman.errors import InputError
from lockman.model.sources import Found, Unresolved, compose, splice, workflow

WORKFLOW = """\
name: ci   # a comment
x-img: &img "ghcr.io/x/y:1"
jobs:
  build:
    runs-on: ubuntu-latest
    container: rust:1.70   # comment
    services:
      db:
        image: 'postgres:16'
      cache: redis:7
    steps:
      - uses: actions/checkout@v4
      - uses: docker://alpine:3.19
  matrix:
    container:
      image: ${{ matrix.img }}
  anchored:
    container:
      image: *img
"""


def test_workflow_containers_services_and_docker_steps() -> None:
    got = workflow.extract(WORKFLOW, "ci.yml")
    found = [(f.ref, f.line, f.what) for f in got if isinstance(f, Found)]
    assert found == [
        ("rust:1.70", 6, "jobs.build.container"),
        ("postgres:16", 9, "jobs.build.services.db.image"),
        ("redis:7", 10, "jobs.build.services.cache"),
        ("alpine:3.19", 13, "jobs.build.steps[1].uses"),
        ("ghcr.io/x/y:1", 2, "jobs.anchored.container.image"),  # where the anchor writes it
    ]
    (u,) = [f for f in got if isinstance(f, Unresolved)]
    assert u.line == 16 and "expression" in u.message


def test_workflow_rewrite_changes_only_the_references() -> None:
    got = [f for f in workflow.extract(WORKFLOW, "ci.yml") if isinstance(f, Found)]
    new = splice(WORKFLOW, {f.span: f"{f.ref}@sha256:{'b' * 64}" for f in got if f.span})
    again = [f for f in workflow.extract(new, "ci.yml") if isinstance(f, Found)]
    assert [f.ref for f in again] == [f"{f.ref}@sha256:{'b' * 64}" for f in got]
    assert new.replace(f"@sha256:{'b' * 64}", "") == WORKFLOW  # comments, quotes, anchors stay


COMPOSE = """\
x-base: &base
  image: "node:20"
services:
  a:
    <<: *base
  b:
    image: ${IMG:-nginx:1.25}
  c:
    image: $OTHER
  d:
    build: .
    image: me/app
  e:
    image: >-
      folded:1
"""


def test_compose_services_merge_keys_defaults_and_built_images() -> None:
    got = compose.extract(COMPOSE, "compose.yml")
    found = [(f.ref, f.line, f.span is not None) for f in got if isinstance(f, Found)]
    # a block scalar is found but not rewritable in place
    assert found == [("node:20", 2, True), ("nginx:1.25", 7, True), ("folded:1", 14, False)]
    (u,) = [f for f in got if isinstance(f, Unresolved)]
    assert "OTHER" in u.message and u.line == 9
    b = [f for f in got if isinstance(f, Found)][1]
    assert b.span is not None and COMPOSE[b.span[0] : b.span[1]] == "nginx:1.25"  # the default is pinned


def test_compose_interpolation() -> None:
    assert compose.interpolate("a$$b${X-y}")[0] == "a$by"
    assert compose.interpolate("${X:?must be set}")[1] == ["X"]


def test_a_billion_laughs_costs_what_its_text_costs() -> None:
    lines = ['a0: &a0 ["x:1", "x:1", "x:1", "x:1", "x:1", "x:1", "x:1", "x:1", "x:1"]']
    for i in range(1, 30):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("services:\n  s:\n    <<: *a29\n    image: *a29\n")
    lines.append("jobs:\n  j:\n    container: *a29\n    services: *a29\n    steps: *a29\n")
    text = "\n".join(lines)
    start = time.monotonic()
    assert compose.extract(text, "c.yml") == [] and workflow.extract(text, "w.yml") == []
    assert time.monotonic() - start < 2


def test_recursive_aliases_do_not_loop() -> None:
    text = "services: &s\n  a: *s\n  <<: *s\njobs: &j\n  x: *j\n  <<: *j\n"
    assert compose.extract(text, "c.yml") == [] and workflow.extract(text, "w.yml") == []


def test_deep_nesting_is_bad_input_naming_the_file() -> None:
    with pytest.raises(InputError, match=r"^deep\.yml: nested deeper"):
        compose.extract("[" * 100_000 + "]" * 100_000, "deep.yml")
    with pytest.raises(InputError, match=r"^deep\.yml: nested deeper"):
        workflow.extract("a:\n" + "".join(" " * i + "a:\n" for i in range(1, 500)), "deep.yml")


def test_terminal_escapes_and_bad_yaml_are_bad_input() -> None:
    with pytest.raises(InputError, match=r"^c\.yml: not valid YAML"):
        compose.extract("services:\n  a:\n    image: \x1b[31mred\n", "c.yml")
    with pytest.raises(InputError, match=r"^c\.yml: not valid YAML \(line 2\)"):
        compose.extract("a: [\nb: }", "c.yml")


def test_non_string_values_are_ignored() -> None:
    assert compose.extract("services:\n  a:\n    image: 12\n  b: [1]\nx: 1\n", "c.yml") == []
    assert workflow.extract("jobs: [1, 2]\n", "w.yml") == []
    assert compose.extract("", "c.yml") == [] and workflow.extract("# only a comment\n", "w.yml") == []


def test_action_metadata_docker_image_and_composite_steps() -> None:
    docker = "name: a\nruns:\n  using: docker\n  image: 'docker://alpine:3.19'  # pinned later\n"
    (f,) = workflow.extract(docker, "action.yml")
    assert isinstance(f, Found) and (f.ref, f.line, f.what) == ("alpine:3.19", 4, "runs.image")
    assert f.span is not None and docker[f.span[0] : f.span[1]] == "alpine:3.19"
    assert workflow.extract("runs:\n  using: docker\n  image: Dockerfile\n", "action.yml") == []
    composite = "runs:\n  using: composite\n  steps:\n    - uses: docker://busybox:1\n    - run: echo\n"
    assert [f.ref for f in workflow.extract(composite, "action.yml") if isinstance(f, Found)] == ["busybox:1"]


def test_merge_keys_plain_and_tagged_but_not_quoted() -> None:
    base = "x: &b {image: 'a:1'}\nservices:\n"
    assert [f.ref for f in compose.extract(base + "  s:\n    <<: *b\n", "c.yml")] == ["a:1"]
    assert [f.ref for f in compose.extract(base + "  s:\n    !!merge <<: *b\n", "c.yml")] == ["a:1"]
    assert compose.extract(base + "  s:\n    '<<': *b\n", "c.yml") == []  # a key named <<
    assert [f.ref for f in compose.extract(base + "  s:\n    <<: [*b]\n    image: 'c:2'\n", "c.yml")] == ["c:2"]


def test_complex_keys_are_skipped() -> None:
    assert compose.extract("services:\n  ? [a]\n  : {image: x}\n  s: {image: 'y:1'}\n", "c.yml")[0].ref == "y:1"  # type: ignore[union-attr]


def test_the_node_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from lockman.model.sources import yamlnodes

    monkeypatch.setattr(yamlnodes, "MAX_NODES", 50)
    with pytest.raises(InputError, match=r"^c\.yml: more than 50 nodes; not read$"):
        compose.extract("services:\n" + "".join(f"  s{i}: {{image: x}}\n" for i in range(20)), "c.yml")


def test_a_control_character_is_named() -> None:
    with pytest.raises(InputError, match=r"^c\.yml: not valid YAML: character 0x1b at offset 26 is not allowed$"):
        compose.extract("services:\n  a:\n    image: \x1b[31mred\n", "c.yml")


def test_compose_reads_the_env_file_values_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """``.env`` values as docker compose applies them; what neither .env nor a default sets is reported."""
    env = compose.parse_env(
        "# registry\nREG=ghcr.io/acme\nexport TAG='1.2'  \nQ=\"a\\\"b\" # c\nEMPTY=\nU=x #note\nbad line\n"
    )
    assert env == {"REG": "ghcr.io/acme", "TAG": "1.2", "Q": 'a"b', "EMPTY": "", "U": "x"}
    text = (
        "services:\n  a:\n    image: ${REG}/app:${TAG}\n  b:\n    image: ${EMPTY:-b:1}\n"
        "  c:\n    image: ${EMPTY-c}:2\n  d:\n    image: ${NOPE}/x:1\n  e:\n    image: ${TAG:+e}:3\n"
        "  f:\n    image: ${REG:-f:1}\n"
    )
    got = compose.extract(text, "c.yml", env)
    assert [g.ref if isinstance(g, Found) else str(g) for g in got] == [
        "ghcr.io/acme/app:1.2",
        "b:1",
        ":2",
        "c.yml:9: services.d.image ${NOPE}/x:1: depends on NOPE, which has no default and no .env value; not locked",
        "e:3",
        "ghcr.io/acme",
    ]
    # the default is written in the file and rewritten in place; a .env value is not
    assert [g.span is not None for g in got if isinstance(g, Found)] == [False, True, False, False, False]
    # no .env: the process environment is never read
    monkeypatch.setenv("REG", "evil.example")
    monkeypatch.setenv("TAG", "1")
    first = str(compose.extract(text, "c.yml")[0])
    assert first.endswith("depends on REG, TAG, which has no default and no .env value; not locked")


# compose-spec/compose-go dotenv/godotenv_var_expansion_test.go (commit 1e4da93), its envMap
# written as .env lines, then each row's input; "UNSET" when compose fails or takes the shell's.
COMPOSE_GO_EXPANSION = [
    ("RESULT=${UNSET_VAR:-Default Value}", "Default Value"),
    ("RESULT=${EMPTY_VAR:-Default Value}", "Default Value"),
    ("RESULT=${TEST_VAR:-Default Value}", "Test Value"),
    ("RESULT=${UNSET_VAR-Default Value}", "Default Value"),
    ("RESULT=${EMPTY_VAR-Default Value}", ""),
    ("RESULT=${TEST_VAR-Default Value}", "Test Value"),
    ("RESULT=${UNSET_VAR:?Test error}", "UNSET"),
    ("RESULT=${EMPTY_VAR:?Test error}", "UNSET"),
    ("RESULT=${TEST_VAR:?Default Value}", "Test Value"),
    ("RESULT=${UNSET_VAR?Test error}", "UNSET"),
    ("RESULT=${EMPTY_VAR?Test error}", ""),
    ("RESULT=${TEST_VAR?Default Value}", "Test Value"),
]


@pytest.mark.parametrize(("line", "expected"), COMPOSE_GO_EXPANSION)
def test_env_values_expand_earlier_variables_as_compose_go_does(line: str, expected: str) -> None:
    env = compose.parse_env(f"EMPTY_VAR=\nTEST_VAR=Test Value\n{line}\n")
    assert env.get("RESULT", "UNSET") == expected


def test_env_expansion_quoting_and_a_variable_set_nowhere() -> None:
    env = compose.parse_env(
        "BASE=1.70\nTAG=${BASE}-slim\nREG=ghcr.io\nIMG=$REG/rust\nQ=\"v$BASE \\$BASE $$\"\n"
        "LIT='${BASE}'\nSHELL_ONLY=${HOME}/x\nLATER=${NEXT}\nNEXT=1\nBASE=${BASE}.1\n"
    )
    assert env == {
        "BASE": "1.70.1",  # set again from its own earlier value
        "TAG": "1.70-slim",
        "REG": "ghcr.io",
        "IMG": "ghcr.io/rust",
        "Q": "v1.70 $BASE $",  # \$ and $$ are a literal $
        "LIT": "${BASE}",  # single quotes: literal
        "NEXT": "1",
    }  # SHELL_ONLY (from the shell in compose) and LATER (NEXT comes after it): unset, not guessed
    got = compose.extract("services:\n  a:\n    image: ${IMG}:${TAG}\n  b:\n    image: x:${LATER}\n", "c.yml", env)
    assert [g.ref if isinstance(g, Found) else str(g) for g in got] == [
        "ghcr.io/rust:1.70-slim",
        "c.yml:5: services.b.image x:${LATER}: depends on LATER, which has no default and no .env value; not locked",
    ]


def test_compose_v1_layout_services_at_the_top_level() -> None:
    text = (
        "x-common: &c\n  image: 'no:1'\nvolumes:\n  image: 'no:2'\nredis:\n  image: redis:7\n"
        "app:\n  image: $${X}\n  build: .\nweb:\n  image: ${TAG}\n"
    )
    got = compose.extract(text, "docker-compose.yml")
    assert [g.ref if isinstance(g, Found) else str(g) for g in got] == [
        "redis:7",
        "docker-compose.yml:11: web.image ${TAG}: depends on TAG, which has no default and no .env value; not locked",
    ]
    assert splice(text, {got[0].span: "redis:7@sha256:" + "a" * 64}).count("redis:7@sha256:") == 1  # type: ignore[union-attr, dict-item]
    # A file with version: but no services: holds none (not the v1 layout).
    assert compose.extract("version: '3'\nredis:\n  image: redis:7\n", "c.yml") == []
