"""Node operations: GitOps edits of the repo (cordon; apply carries them out) and reads (logs)."""
