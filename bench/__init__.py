"""The benchmark: funops against N lab nodes (see bench/README.md)."""
