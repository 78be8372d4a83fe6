"""apply: converge nodes — idempotent tasks per node, handlers, health gates, batches, records."""
