"""The entrypoints: HTTP routes and the coordinator page, subscribers, the escalation sweep."""
