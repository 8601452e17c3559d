"""Risk: the mandatory pre-trade gate, position sizing, outcome probabilities, portfolio risk, limits."""
