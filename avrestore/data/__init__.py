"""Datasets: preparing face-centred clips from source videos, splits, and training datasets."""
