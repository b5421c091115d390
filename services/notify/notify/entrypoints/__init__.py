"""The entrypoints: HTTP routes and the delivery loop."""
