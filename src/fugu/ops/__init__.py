"""Pure tensor functions: advantages, returns, losses, normalisation."""
