"""The typed tasks of each kind, rendered to sh the way apply sends them: for tests that run or check
the scripts (a real sh, shellcheck) one task at a time."""

from __future__ import annotations

from funops.kinds.artifact import KIND as ARTIFACT
from funops.kinds.container import KIND as CONTAINER
from funops.kinds.file import KIND as FILE
from funops.kinds.file import artifacts_dir
from funops.model.strategy import HealthCheck
from funops.node.shell import BUNDLE_RUNNER, PathMap, bundle, parse_bundle, render
from funops.node.shell import ShellStep as Task
from funops.resources import NodeDesired, Resource
from funops.tasks import model as m

__all__ = ["BUNDLE_RUNNER", "Task", "bundle", "parse_bundle"]


def write_file(res: Resource, state_dir: str, path: PathMap) -> Task:
    return render(FILE.write(res, state_dir), path)


def restore_file(node_path: str, state_dir: str, path: PathMap) -> Task:
    return render(FILE.restore(node_path, state_dir), path)


def remove_file(node_path: str, state_dir: str, path: PathMap) -> Task:
    return render(m.RemoveFile(node_path, FILE.restore(node_path, state_dir).backup), path)


def keep_artifacts(state_dir: str, files: list[tuple[str, str]], keep: set[str], path: PathMap) -> Task:
    return render(m.KeepArtifacts(artifacts_dir(state_dir), tuple(files), frozenset(keep)), path)


def write_state(node_path: str, content: bytes, path: PathMap) -> Task:
    return render(m.WriteState(node_path, content), path)


def run_container(res: Resource, path: PathMap) -> Task:
    return render(CONTAINER.run(res), path)


def start_container(name: str) -> Task:
    return render(m.StartContainer(name), str)


def remove_container(name: str, remove_image: bool, keep_images: set[str] = frozenset()) -> Task:
    return render(m.RemoveContainer(name, remove_image, frozenset(keep_images)), str)


def prune_images(repositories: set[str], keep: set[str]) -> Task:
    return render(m.PruneImages(frozenset(repositories), frozenset(keep)), str)


def start_unit(unit: str, restart: bool) -> Task:
    return render(m.StartUnit(unit, restart), str)


def stop_unit(unit: str) -> Task:
    return render(m.StopUnit(unit), str)


def daemon_reload() -> Task:
    return render(m.DaemonReload(), str)


def ensure_user(name: str) -> Task:
    return render(m.EnsureUser(name), str)


def nginx_test() -> Task:
    return render(m.NginxTest(), str)


def nginx_reload() -> Task:
    return render(m.NginxReload(), str)


def health_check(app: str, check: HealthCheck | None, *, host: str, port: int | None, unit: str | None,
                 container: str | None, min_healthy_seconds: float) -> Task:  # fmt: skip
    probe = m.HealthProbe.of(check or HealthCheck())
    task = m.CheckHealth(app, probe, host, port, unit, container, min_healthy_seconds)
    return render(task, str)


def place_artifact(res: Resource, path: PathMap) -> Task:
    return render(ARTIFACT.place(res), path)


def remove_artifact(link: str, path: PathMap) -> Task:
    return render(m.RemoveArtifact(link), path)


def swap_tasks(sites: list[Resource], transport: object) -> list[Task]:
    from funops.apply.drain import _swap_tasks

    return [render(task, transport.path) for task in _swap_tasks(sites)]  # type: ignore[attr-defined]


def wait_script(ports: list[int], timeout: float) -> str:
    return render(m.AwaitIdle(tuple(ports), timeout), str).script


def every_task(desired: NodeDesired, path: PathMap) -> list[Task]:
    """What each kind plans for the node's resources, rendered: all created (each restarted by the
    handlers it owes, nginx sites with their undo), then each deleted."""
    from funops import kinds
    from funops.diff.differ import Change, diff_node
    from funops.gather.probe import LiveFacts
    from funops.kinds.base import NodeWork
    from funops.plan.taskplan import plan_node
    from funops.state.node_state import NodeState

    nothing = LiveFacts()
    planned = plan_node(desired, diff_node(desired, nothing), NodeState(), state_dir="/var/lib/funops",
                        strategies={}, cleanup_images=set(desired.apps), records=[])  # fmt: skip
    tasks = [*planned.changes, *(t for g in planned.gated for t in [*g.tasks, *g.undo])]
    tasks += planned.housekeeping(NodeState())
    for name, kind in kinds.REGISTRY.items():
        gone = [Change(r.id, r.kind, r.owner, "delete") for r in desired.resources if r.kind == name]
        work = NodeWork(desired={}, writes=[], deletes=gone, handlers=[], state=NodeState(),
                        state_dir="/var/lib/funops", cleanup_images=set(desired.apps))  # fmt: skip
        tasks += [step.task for step in kind.tasks(work)]
    return [render(task, path) for task in tasks]
