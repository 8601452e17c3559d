"""Orders, exactly once: placement through the gate, settlement by look-up, reconciliation, queries."""
