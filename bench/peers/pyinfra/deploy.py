"""The bench desired state for pyinfra: run as `pyinfra <inventory.py> deploy.py` (bench/tools.py).

The inventory (generated from the lab by bench/tools.py) gives each host `bind` and every host
`upstreams`; the templates are shared with the Ansible peer and render what `funops render` does.
"""

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
values = {"node_name": host.name, "bind": host.data.bind, "upstreams": host.data.upstreams}

env = files.template(
    name="env file",
    src=str(TEMPLATES / "bench.env.j2"),
    dest="/etc/funops/apps/bench.env",
    mode="600",
    **values,
)
files.put(name="health file", src=StringIO("ok\n"), dest="/srv/bench/health", mode="644")
unit = files.template(
    name="systemd unit",
    src=str(TEMPLATES / "bench.service.j2"),
    dest="/etc/systemd/system/bench.service",
    mode="644",
    **values,
)
systemd.service(
    name="reload units, restart bench if its unit or env changed",
    service="bench.service",
    daemon_reload=True,
    restarted=True,
    _if=any_changed(env, unit),
)
systemd.service(name="bench enabled and running", service="bench.service", running=True, enabled=True)
site = files.template(
    name="nginx site",
    src=str(TEMPLATES / "funops-bench.conf.j2"),
    dest="/etc/nginx/conf.d/funops-bench.conf",
    mode="644",
    **values,
)
systemd.service(name="reload nginx", service="nginx.service", reloaded=True, _if=site.did_change)
