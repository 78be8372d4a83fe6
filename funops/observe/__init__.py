"""What funops tells a monitoring system: the outcome of each apply, rollback, drift check and
publish as Prometheus metrics (pushed to a Pushgateway or written for node_exporter's textfile
collector), the inventory as Prometheus service discovery, and deploy figures over a window for
`funops history`. The agent's own /metrics are served on the node (funops/agent)."""
