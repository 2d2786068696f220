"""The local inference server: HTTP API (app), job store, worker executor, events, auth."""
