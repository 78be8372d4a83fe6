"""What a rolling deploy costs (issue 32): its own overhead per batch, and the users' worst request
through the ingress while it runs. `python -m bench.rollout`; bench/README.md has the figures."""
