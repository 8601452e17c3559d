"""aiotrade: a natively async crypto trading backend."""
