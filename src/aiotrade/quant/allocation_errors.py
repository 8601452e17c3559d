"""Errors raised by the allocation module (to be merged into `quant.errors` later)."""


class AllocationInputError(ValueError):
    """The returns, signals or constraints cannot produce a well-defined allocation."""


class AllocationConvergenceError(ArithmeticError):
    """An optimiser did not reach its optimality conditions within its iteration budget."""
