"""Baseline clients, each run as its own process by the harness (``python -m bench.clients.X``)."""
