"""The Prometheus exporter: collector, exposition, background check worker."""
