"""The adapters: tables, repositories and the clinics' work-queue stream."""
