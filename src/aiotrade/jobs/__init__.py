"""Background work: the reconciler, the key purge, the equity recorder and loss-limit monitor, warm-up."""
