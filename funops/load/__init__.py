"""load: read funops.yaml, the inventory and the manifests (working tree or a git revision)."""
