"""The no-op cache: a `plan` or `apply` of an unchanged repo against unchanged nodes, answered
without loading, compiling or importing the engine (docs/architecture.md, "The no-op cache").

A full run that found nothing to do over the agent records, under a key of everything that went into
it (`key.py`: the command line, the environment, the repo's files, funops's own code), what each
node's probe was and a digest of what it answered, and what the run printed (`store.py`). A later run
with the same key sends each node the same probe (`replay.py`); when every answer has the same
digest, the recorded output is the run's output. Anything else — a miss, a different answer, an
error, an option it does not know — runs the full path, which records again. Standard library only:
importing it costs next to nothing.
"""
