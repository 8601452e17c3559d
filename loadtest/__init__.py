"""`make loadtest` / `make soak`: a locust profile against the production shape started on loopback."""
