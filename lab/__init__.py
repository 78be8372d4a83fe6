"""The funops lab: real nodes (systemd + sshd + nginx + docker) as containers on the host network.

    import lab
    lab_ = lab.up(3)                 # idempotent; builds the node image once (cached by recipe hash)
    lab_.exec("node1", "nginx -t")   # out of band (docker exec)
    lab_.ssh("node2", "true")        # real SSH with the lab's key and known_hosts
    lab.down()

See lab/README.md.
"""

from .config import LabError, lab_dir
from .engine import engine_answers
from .image import build_image
from .nodes import Lab, Node, NodeStatus, current, down, status, up
from .testapp import ensure_testapp

__all__ = [
    "Lab",
    "LabError",
    "Node",
    "NodeStatus",
    "build_image",
    "current",
    "down",
    "engine_answers",
    "ensure_testapp",
    "lab_dir",
    "status",
    "up",
]
