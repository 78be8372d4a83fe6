"""cli: the `funops` command. Commands import their stage lazily to keep start-up quick."""
