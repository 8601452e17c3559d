"""The live stream: one computation per account, fanned out to every subscriber."""
