"""state: what funops records on each node (/var/lib/funops/state.json)."""
