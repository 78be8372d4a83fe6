"""compile: manifests → the desired resources of every node (pure)."""
