"""libvirt's side: the read-only connection, domain and network XML, deep facts, the event loop."""
