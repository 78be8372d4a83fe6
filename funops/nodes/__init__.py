"""Node operations, GitOps style: they edit the repo; apply carries them out."""
