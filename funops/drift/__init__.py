"""drift: live state vs what funops last applied and what the repo declares, without changing anything."""
