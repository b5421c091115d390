"""The adapters: tables, the records kept in step with the events, delivery channels."""
