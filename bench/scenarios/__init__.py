"""The bench's scenarios, one module per kind of measure; each returns a JSON-able dict."""
