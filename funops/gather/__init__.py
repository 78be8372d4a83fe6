"""gather: the live facts of every node, in one round trip per node, nodes in parallel."""
