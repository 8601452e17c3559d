"""Rules written once, used by every service: money, conversions, market rules, valuation, funding."""
