"""What one node looks like now (`LiveFacts`): what the gather probe found (gather/probe.py parses
it), as every kind's parser, planner and drift check read it."""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..state.node_state import NodeState


class LiveFacts:
    """What one node looks like now, for the resources in play: each kind's facts by resource name
    (`live[kind][name]`, also `facts.<kind alias>`, e.g. `facts.files`), and the node's own facts."""

    # The kinds' names and aliases (facts.files → live["file"]): given by the registry
    # (kinds/__init__.py, `register`), which this module does not import: the kinds name LiveFacts.
    _kinds: ClassVar[tuple[str, ...]] = ()
    _aliases: ClassVar[dict[str, str]] = {}

    @classmethod
    def register(cls, aliases: dict[str, str]) -> None:
        """The kinds in the registry, as {facts alias: kind name}."""
        cls._kinds, cls._aliases = tuple(aliases.values()), dict(aliases)

    def __init__(
        self,
        live: dict[str, dict[str, dict[str, Any]]] | None = None,
        *,
        state: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        self.live: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in self._kinds} | (live or {})
        self.systemd = True
        self.docker = True
        self.disk_free_pct: float | None = None
        self.container_count: int | None = None
        self.nginx: str | None = None
        self._state_json: str | None = None
        self.state = state  # the node's funops state file, if any
        self.state_error: str | None = None
        self.lock: dict[str, Any] | None = None  # the apply lock, if held: holder info, expires, node's now
        # A local node under a root prefix (transports/local.py): only its files are probed; what acts
        # on the whole host (units, containers, owners) is taken as funops last applied it.
        self.files_only = False
        # The node's fingerprint key (see redact.py): secret-derived digests are shown only keyed with it.
        # Held in memory, never printed; None until the first apply created it.
        self.fingerprint_key: bytes | None = None
        for key, value in fields.items():
            if key in self._aliases or key in self.__dict__:
                setattr(self, key, value)
            else:
                raise TypeError(f"LiveFacts has no field {key!r}")

    def __getattr__(self, alias: str) -> dict[str, dict[str, Any]]:
        kind = self._aliases.get(alias)
        if kind is None:
            raise AttributeError(alias)
        return self.live[kind]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._aliases:
            self.live[self._aliases[name]] = value
        else:
            super().__setattr__(name, value)

    def __repr__(self) -> str:
        return f"LiveFacts(live={self.live!r}, state={self.state!r})"

    @property
    def state(self) -> dict[str, Any] | None:
        """The node's funops state file as data, if any: a new dict at each read. It is kept as JSON
        text (`state_json`): a run holds every node's facts, and the file's dict beside its model
        (`node_state`) was ~9 KB a node more (18 MB at 2,000 nodes)."""
        return None if self._state_json is None else json.loads(self._state_json)

    @state.setter
    def state(self, value: dict[str, Any] | None) -> None:
        self._state_json = None if value is None else json.dumps(value, sort_keys=True)
        self.__dict__.pop("node_state", None)  # made again from the new state when asked

    @property
    def state_json(self) -> str | None:
        """The state as canonical JSON (`json.dumps(state, sort_keys=True)`), made once at gather:
        the plan's observed digest embeds it as it is."""
        return self._state_json

    @property
    def has_state(self) -> bool:
        return self._state_json is not None

    @cached_property
    def node_state(self) -> NodeState:
        """The state file, parsed once per run (gather checked it fits the format)."""
        from ..state.node_state import NodeState  # pydantic: the controller's side only

        return NodeState.model_validate_json(self._state_json) if self._state_json else NodeState()
