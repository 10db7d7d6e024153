"""GitHub Actions workflow (or action metadata, ``action.yml``) → the images its jobs run in.

``jobs.<id>.container`` (a string, or a mapping's ``image``), ``jobs.<id>.services.<id>.image``
(or a service given as a string) and ``jobs.<id>.steps[*].uses: docker://IMAGE``. A value with a
``${{ … }}`` expression (a matrix, an input) is known only when the workflow runs: reported,
not guessed. In ``action.yml``: ``runs.image: docker://IMAGE`` (an image ``Dockerfile`` is built,
and read as a Dockerfile) and composite steps' ``uses: docker://IMAGE``.
"""

from __future__ import annotations

from yaml.nodes import Node, SequenceNode

from lockman.model.sources import Found, Unresolved
from lockman.model.sources import yamlnodes as y


def _one(text: str, path: str, node: Node | None, what: str, prefix: str = "") -> Found | Unresolved | None:
    value = y.string(node)
    if node is None or value is None or not value.startswith(prefix):
        return None
    ref = value[len(prefix) :]
    if not ref.strip():
        return None
    if "${{" in ref:
        return Unresolved(path, y.line(node), f"{what} {ref}: depends on a workflow expression; not locked")
    span = y.scalar_span(text, node)
    if span is not None:
        span = (span[0] + len(prefix), span[1])
    return Found(ref, path, y.line(node), span, what)


def extract(text: str, path: str) -> list[Found | Unresolved]:
    root = y.compose(text, path)
    out: list[Found | Unresolved | None] = []
    runs = y.get(root, "runs")  # an action's metadata (action.yml): a Docker action or composite steps
    out.append(_one(text, path, y.get(runs, "image"), "runs.image", "docker://"))
    steps = y.get(runs, "steps")
    for i, step in enumerate(steps.value if isinstance(steps, SequenceNode) else []):
        out.append(_one(text, path, y.get(step, "uses"), f"runs.steps[{i}].uses", "docker://"))
    for job_id, job in y.items(y.get(root, "jobs")):
        container = y.get(job, "container")
        if y.string(container) is not None:
            out.append(_one(text, path, container, f"jobs.{job_id}.container"))
        else:
            out.append(_one(text, path, y.get(container, "image"), f"jobs.{job_id}.container.image"))
        for sid, service in y.items(y.get(job, "services")):
            where = f"jobs.{job_id}.services.{sid}"
            if y.string(service) is not None:
                out.append(_one(text, path, service, where))
            else:
                out.append(_one(text, path, y.get(service, "image"), f"{where}.image"))
        steps = y.get(job, "steps")
        for i, step in enumerate(steps.value if isinstance(steps, SequenceNode) else []):
            out.append(_one(text, path, y.get(step, "uses"), f"jobs.{job_id}.steps[{i}].uses", "docker://"))
    return [f for f in out if f is not None]
