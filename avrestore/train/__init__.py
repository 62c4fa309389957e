"""Training: experiment configs, the staged training loop, checkpoints, multi-process set-up."""
