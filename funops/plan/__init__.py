"""plan: the diff of every node as one value — printed, saved as JSON, applied exactly."""
