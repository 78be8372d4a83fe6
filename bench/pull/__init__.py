"""The pull-mode benchmark (issue 14): N simulated pullers against a real nginx serving the store
`funops publish` writes. The store, the HTTP and `funops publish` are real; the nodes are root
directories (bench/fleet/simlocal.py) polling from a few worker processes instead of systemd timers."""
