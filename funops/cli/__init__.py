"""cli: the `funops` command. Commands import their stage lazily to keep start-up quick.

Two start-up settings for the command line process only (the package used as a library, and the
agent on its node, keep Python's defaults):
- the cyclic garbage collector runs after 100,000 net allocations instead of 700: importing builds
  about a thousand classes and collecting all the while cost ~4% of a no-op plan; a long apply still
  collects;
- pydantic does not look for plugins (an entry-point scan of every installed distribution on its
  first model, ~10 ms); funops uses none, and the variable set in the environment wins.
"""

import gc
import os

gc.set_threshold(100_000, 50, 50)
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
