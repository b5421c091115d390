"""notify's rules, pure: events in, facts and decisions out. No I/O here (an import check in
the unit tests keeps it so)."""
