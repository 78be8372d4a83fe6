"""funops — a CLI-first GitOps reconciler for plain servers."""

__version__ = "0.1.0"
