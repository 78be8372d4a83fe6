"""What every resource kind provides, side by side in its own module (docs/architecture.md, "Resource kinds").

A kind is the unit of extension: its probe fragment and the pure parser of its facts (gather), the
live attributes it compares (diff), the pure function from changes, desired resources and node state
to typed tasks (apply), its plan summary and its drift class. The stages loop over the registry
(`funops.kinds`) and never name a kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..ids import Handler, ResourceId
from ..resources import Resource
from ..tasks.model import Task

if TYPE_CHECKING:
    from ..state.node_state import NodeState
    from ..state.records import ReleaseRecord
    from .change import Change
    from .facts import LiveFacts

PathMap = Callable[[str], str]
Sections = Mapping[str, list[str]]  # the probe's output: section tag → its lines
DriftClass = Literal["modified", "stopped"]

# Where a task runs within a node's first round trip (the second is health, gated groups, record).
# Artifacts first: a failed or corrupt download stops the node before anything changed.
PREPARE = 10
DELETE = 20  # + the kind's delete_rank: what runs first (containers, units), then what they used
USERS = 30
DIRECTORIES = 35
WRITE = 40
DAEMON = 50
START = 60
RUN = 70


@dataclass(frozen=True)
class Step:
    """A task and its stage (above): a node's tasks run in stage order."""

    stage: int
    task: Task


@dataclass
class NodeWork:
    """What a kind plans its tasks from: the node's desired resources, this kind's pending changes
    (with their desired resource; none for deletes), the handlers the node runs, its state."""

    desired: Mapping[str, Resource]  # every resource the node should have, by id
    writes: list[tuple[Change, Resource]]  # create / update / replace of this kind
    deletes: list[Change]
    handlers: list[Handler]
    state: NodeState  # as gathered (release records: what the kept releases need)
    state_dir: str
    cleanup_images: set[str] = field(default_factory=set)  # apps whose images go with their container
    records: list[ReleaseRecord] = field(default_factory=list)  # releases this run writes

    def restarts(self, kind: str) -> list[str]:
        """Names of this kind's resources a handler restarts."""
        return [rid.name for h in self.handlers if (rid := h.restarts) is not None and rid.kind == kind]


@dataclass(frozen=True)
class GatedGroup:
    """Tasks that run only after every touched app is healthy, all or nothing: `undo` puts back what
    the group wrote when it stopped before its last task (e.g. nginx sites whose `nginx -t` failed).
    Once it finished, `resources` are live and its `handler` is no longer owed."""

    tasks: list[Task]
    undo: list[Task]  # the undo of tasks[i] for the first len(undo) tasks, in that order
    resources: list[Resource]
    handler: Handler


class ResourceKind:
    name: ClassVar[str]  # the id prefix: "file" in file:/etc/x
    article: ClassVar[str]  # "a file": for messages
    facts_alias: ClassVar[str]  # LiveFacts.<alias>: this kind's facts by name ("files")
    delete_rank: ClassVar[int] = 2
    # A change of any of these fields replaces the resource (delete, then create: Terraform's -/+).
    replace_fields: ClassVar[frozenset[str]] = frozenset()
    summary_fields: ClassVar[tuple[str, ...]] = ()  # shown for a create, in this order
    handler_rank: ClassVar[int] = 2  # its restart handlers' place among a node's handlers
    node_handlers: ClassVar[Mapping[str, int]] = {}  # node-wide handlers it runs → their rank
    # A file on the node holding the resource's content: plans and drift diff it, `render` writes it.
    file_content: ClassVar[bool] = False
    # It lives in the host's service managers, not in files: a local node under a root prefix runs
    # none of its tasks and takes it as last applied (transports/local.py, diff/differ.py).
    host_wide: ClassVar[bool] = False

    # ---- gather: the probe fragment and the pure parser of its facts -------------------------------

    def probe(self, names: list[str], path: PathMap) -> str:
        """A sh fragment printing `@@funops <tag>` sections with the facts of these resources."""
        raise NotImplementedError

    def read(self, names: list[str], path: PathMap) -> str | None:
        """What `probe`'s fragment prints, read in this process (the agent, on its node: no fork per
        tool); None when this kind has no such reader or these names need the fragment."""
        return None

    def parse(self, sections: Sections, unmap: PathMap, facts: LiveFacts) -> dict[str, dict[str, Any]]:
        """The facts of this kind's resources by name (may also set node facts such as `systemd`)."""
        raise NotImplementedError

    # ---- diff ------------------------------------------------------------------------------------------

    def live(self, name: str, facts: LiveFacts) -> dict[str, Any] | None:
        """The live counterpart of the desired attributes; None when the resource does not exist."""
        raise NotImplementedError

    def in_terms_of(
        self, desired: Mapping[str, Any], live: dict[str, Any], name: str, facts: LiveFacts
    ) -> dict[str, Any]:
        """`live` as the desired attributes express it, where the node allows two spellings."""
        return live

    def reported(self, facts: LiveFacts) -> dict[str, Any]:
        """Facts of this kind worth showing with the node in a plan, beyond what is compared (a job's
        last run); keyed by what they are, e.g. {"jobs": {...}}."""
        return {}

    def observed(self, live: dict[str, Any] | None) -> dict[str, Any] | None:
        """What apply compares under the lock to see whether the node changed since the plan."""
        return live

    def update_action(self, fields: set[str]) -> Literal["update", "replace"]:
        return "replace" if fields & self.replace_fields else "update"

    # ---- apply: (desired, live, node state) → typed tasks ------------------------------------------

    def tasks(self, work: NodeWork) -> list[Step]:
        raise NotImplementedError

    def gated(self, work: NodeWork) -> GatedGroup | None:
        """Tasks that must wait for the health gate (nginx sites); None for most kinds."""
        return None

    def housekeeping(self, work: NodeWork) -> list[Task]:
        """What keeps the kept releases restorable (and no more), after the changes."""
        return []

    def app_of(self, name: str) -> str | None:
        """The app whose health a restart of this resource puts at stake."""
        return None

    # ---- state: what a kept release needs ---------------------------------------------------------

    def stored(self, desired: Mapping[str, Any]) -> str | None:
        """The sha256 of content the node's artifact store keeps for a release (files)."""
        return None

    # ---- drift ---------------------------------------------------------------------------------------

    def drift_class(self, changed: set[str]) -> DriftClass:
        return "modified"

    def drift_summary(self, drift_class: DriftClass, summary: str) -> str:
        return summary

    def notices(self, res: Resource, facts: LiveFacts) -> list[str]:
        """Things worth a line in a drift report that are not drift (a container that restarted)."""
        return []

    def resource_id(self, name: str) -> ResourceId:
        return ResourceId.of(self.name, name)
