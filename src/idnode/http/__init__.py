"""HTTP: the Handle.Net-compatible JSON API, native messages over HTTP, and the proxy."""
