"""Drift as a pure classification of a plan's facts: no node is touched here.

For every resource the live value is compared with a *baseline*: what funops last applied there
(`state.managed[id].applied`), or — on nodes applied by an older funops that did not record it —
what the repo declares. Then:

- live = desired                      → nothing to report (and nothing `--fix` would do);
- live = applied ≠ desired            → *pending*: the repo is ahead; shown, never a failure;
- never applied by funops             → *pending* (create/update);
- live ≠ baseline                     → drift: `missing` (gone), `stopped` (a unit inactive/failed/
                                        disabled, a container not running), else `modified`;
- managed by funops, not in the repo  → `extra` (the next apply deletes it);
- a funops-looking file funops did not write (node/shell.py OWN_GLOBS) → `extra`, not fixable;
- a handler a change still owes       → `owed`;
- `nginx -t` fails                    → `modified` (kind nginx), not fixable by itself.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..diff.differ import live_attributes
from ..gather.probe import LiveFacts
from ..kinds import kind_of
from ..kinds.cert import KIND as CERT
from ..kinds.file import KIND as FILE
from ..plan.document import FieldChangeDoc
from ..redact import is_sha256, keyed_fingerprint
from ..resources import NodeDesired
from ..state.node_state import ManagedResource
from .document import Baseline, DriftClass, DriftItemDoc, FieldDriftDoc, NginxTestDoc, PendingDoc
from .extras import NodeExtras

if TYPE_CHECKING:
    from ..certificates import Decision

NGINX_ID = "nginx:config"
# The node's fingerprint key while one node is classified: every content hash drift shows (and the
# drift fingerprint acks store) is keyed with it — a secret file's hash could be guessed back.
_KEY: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("fingerprint_key", default=None)


@dataclass
class NodeFindings:
    drift: list[DriftItemDoc] = field(default_factory=list)
    pending: list[PendingDoc] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    nginx_test: NginxTestDoc | None = None


def drift_fingerprint(drift_class: str, live: Any, key: bytes | None = None) -> str:
    """Names one drifted live value: an acknowledgement covers it until the value changes again.
    Keyed with the node's fingerprint key: acks are committed, and a secret file's live hash is in it."""
    if key is None and live is not None:  # no key yet: hashes cannot be part of it unkeyed
        live = {k: ("(hash)" if k in ("sha256", "specHash") else v) for k, v in dict(live).items()}
    body = json.dumps({"class": drift_class, "live": live}, sort_keys=True, default=str).encode()
    if key is None:
        return "sha256:" + hashlib.sha256(body).hexdigest()[:16]
    return "sha256:" + hmac.new(key, body, hashlib.sha256).hexdigest()[:16]


def classify_node(desired: NodeDesired, facts: LiveFacts, extras: NodeExtras | None = None) -> NodeFindings:
    token = _KEY.set(facts.fingerprint_key)
    try:
        return _classify(desired, facts, extras)
    finally:
        _KEY.reset(token)


def _classify(desired: NodeDesired, facts: LiveFacts, extras: NodeExtras | None) -> NodeFindings:
    state = facts.node_state
    found = NodeFindings()
    wanted = {r.id for r in desired.resources}
    for res in desired.resources:
        live = live_attributes(res.id, facts, res.desired)
        if _same(live, res.desired):
            continue
        basis, expected = _baseline(state.managed.get(res.id), res.desired)
        if expected is None or (basis == "applied" and _same(live, expected)):
            found.pending.append(_pending(res.id, res.kind, res.owner, live, res.desired))
        else:
            found.drift.append(_resource_drift(res.id, res.kind, res.owner, basis, expected, live))
    for rid, managed in sorted(state.managed.items()):
        live = live_attributes(rid, facts) if rid not in wanted else None
        if live is not None:
            found.drift.append(
                _item(
                    rid,
                    managed.kind,
                    managed.owner,
                    "extra",
                    "managed by funops but no longer in the repo",
                    "applied" if managed.applied is not None else "none",
                    [
                        FieldDriftDoc(field=k, expected=None, live=_show(k, v))
                        for k, v in sorted(live.items())
                    ],
                    live,
                )
            )
    for handler in state.owed:
        found.drift.append(
            _item(
                f"handler:{handler}",
                "handler",
                None,
                "owed",
                f"{handler} is due from an apply that did not finish",
                "applied",
                [],
                handler,
            )
        )
    found.notices += [note for res in desired.resources for note in kind_of(res.id).notices(res, facts)]
    if extras is not None:
        # What a release that did not succeed wrote is funops's, though no apply manages it.
        written = {
            res.id: f"{rec.id} ({rec.status})"
            for recs in state.releases.values()
            for rec in recs
            if rec.status != "succeeded"
            for res in rec.resources
        }
        _add_extras(found, extras, wanted | set(state.managed), written)
    return found


def _baseline(
    managed: ManagedResource | None, desired: Mapping[str, Any]
) -> tuple[Baseline, Mapping[str, Any] | None]:
    if managed is None:
        return "none", None
    if managed.applied is not None:
        return "applied", managed.applied
    return "desired", desired  # applied by a funops that did not record it: the repo is the best guess


def _same(live: Mapping[str, Any] | None, expected: Mapping[str, Any] | None) -> bool:
    if live is None or expected is None:
        return live is expected
    return all(live.get(k) == v for k, v in expected.items())


def _resource_drift(
    rid: str,
    kind: str,
    owner: str,
    basis: Baseline,
    expected: Mapping[str, Any],
    live: Mapping[str, Any] | None,
) -> DriftItemDoc:
    if live is None:
        fields = [FieldDriftDoc(field=k, expected=_show(k, v), live=None) for k, v in expected.items()]
        return _item(
            rid,
            kind,
            owner,
            "missing",
            f"gone from the node ({kind_of(rid).article} funops applied)",
            basis,
            fields,
            None,
        )
    diff = {k: (v, live.get(k)) for k, v in expected.items() if live.get(k) != v}
    if "type" in live:  # the path is no longer a regular file
        diff = {"type": ("regular file", live["type"])}
    fields = [FieldDriftDoc(field=k, expected=_show(k, e), live=_show(k, v)) for k, (e, v) in diff.items()]
    of_kind = kind_of(rid)
    drift_class: DriftClass = of_kind.drift_class(set(diff)) if "type" not in live else "modified"
    summary = ", ".join(
        # A hash already reads `sha256:…`: no `sha256: sha256:…` label before it.
        f"{'' if f.field == 'sha256' else f.field + ': '}{_text(f.expected)} → {_text(f.live)}"
        for f in fields
    )
    summary = of_kind.drift_summary(drift_class, summary)
    return _item(rid, kind, owner, drift_class, summary, basis, fields, dict(live))


def _pending(
    rid: str, kind: str, owner: str, live: Mapping[str, Any] | None, desired: Mapping[str, Any]
) -> PendingDoc:
    fields = [
        FieldChangeDoc(field=k, old=_show(k, (live or {}).get(k)), new=_show(k, v))
        for k, v in desired.items()
        if live is None or live.get(k) != v
    ]
    return PendingDoc(
        id=rid, kind=kind, owner=owner, action="create" if live is None else "update", fields=fields
    )


def _add_extras(found: NodeFindings, extras: NodeExtras, known: set[str], written: dict[str, str]) -> None:
    if extras.error:
        found.notices.append(
            f"the drift probe failed, extra files and nginx were not checked: {extras.error}"
        )
        return
    for path, digest in sorted(extras.own_files.items()):
        rid = FILE.resource_id(path)
        if rid in known:
            continue
        found.drift.append(
            _item(
                rid,
                FILE.name,
                None,
                "extra",
                f"written by release {written[rid]}, which did not succeed; no apply manages it now "
                "(not removed by --fix)"
                if rid in written
                else "in a place only funops writes, but funops did not create it (not removed by --fix)",
                "none",
                [FieldDriftDoc(field="sha256", expected=None, live=_show("sha256", digest))],
                {"sha256": digest},
                fixable=False,
            )
        )
    if extras.nginx_ok is not None:
        found.nginx_test = NginxTestDoc(
            ok=extras.nginx_ok, output="" if extras.nginx_ok else extras.nginx_output
        )
    if extras.nginx_ok is False:
        found.drift.append(
            _item(
                NGINX_ID,
                "nginx",
                None,
                "modified",
                "`nginx -t` fails: the next reload would be refused",
                "none",
                [],
                extras.nginx_output,
                fixable=False,
            )
        )


def _item(
    rid: str,
    kind: str,
    owner: str | None,
    drift_class: DriftClass,
    summary: str,
    basis: Baseline,
    fields: list[FieldDriftDoc],
    live: Any,
    fixable: bool = True,
) -> DriftItemDoc:
    return DriftItemDoc(
        id=rid,
        kind=kind,  # type: ignore[arg-type]
        owner=owner,
        drift_class=drift_class,
        summary=summary,
        baseline=basis,
        fields=fields,
        fingerprint=drift_fingerprint(drift_class, live, _KEY.get()),
        fixable=fixable,
        acknowledged=False,
        ack=None,
    )


def _show(field_name: str, value: Any) -> Any:
    """Content hashes only ever keyed (a secret file's hash could be guessed back); the spec hash
    holds no secret material."""
    if value is not None and (field_name == "sha256" or (isinstance(value, str) and is_sha256(value))):
        return keyed_fingerprint(value, _KEY.get())
    return value


def _text(value: Any) -> str:
    return "(none)" if value is None else str(value)


def certificate_drift(decision: Decision, node: str, facts: LiveFacts) -> DriftItemDoc | None:
    """A certificate this node serves inside its renew window (`expiring`), or with another serial
    than the fleet's (`mismatched`): found across the edge nodes (funops/certificates.py), shown per node."""
    served = decision.nodes.get(node)
    if served is None:
        return None
    if decision.action == "renew":
        drift_class: DriftClass = "expiring"
        summary = f"certificate {decision.name}: {decision.reason}; `funops certs renew`"
    elif decision.mismatch and served.serial != decision.serial:
        drift_class = "mismatched"
        summary = f"certificate {decision.name}: serves {served.serial}, the other nodes {decision.serial}"
    else:
        return None
    token = _KEY.set(facts.fingerprint_key)
    try:
        return _item(
            CERT.resource_id(decision.name), CERT.name, None, drift_class, summary, "none",
            [FieldDriftDoc(field="serial", expected=decision.serial, live=served.serial),
             FieldDriftDoc(field="notAfter", expected=None, live=served.not_after.isoformat())],
            {"serial": served.serial}, fixable=False,
        )  # fmt: skip
    finally:
        _KEY.reset(token)
