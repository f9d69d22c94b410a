"""One accelerate training loop, optimisation and checkpoints."""
