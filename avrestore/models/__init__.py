"""Restoration networks (GAVN and its peers), their building blocks, and the model registry."""
