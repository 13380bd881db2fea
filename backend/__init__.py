"""Framework-free backend: one package per drawn service. Never imports reflex."""
