"""The runtime every service shares: settings, logs, metrics, bus, store, auth and servers."""
