"""Identity similarity: cosine of dlib's 128-d face descriptors of restored and HQ frames.

Each descriptor is computed on the face aligned by that frame's own 68 landmarks (restored
landmarks as fitted for LMD, HQ landmarks as given), so a restoration that moves the features
is judged on where it put them. 1 is identical. The descriptors are not unit vectors and
unrelated faces still score high: on first frames of the sample clips, two Obama clips gave
0.95 and pairs of different people 0.79–0.88.
"""

from __future__ import annotations

import numpy as np

from avrestore.faces.identity import FaceEmbedder


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def identity_similarity(
    embedder: FaceEmbedder,
    restored: np.ndarray,
    hq: np.ndarray,
    restored_landmarks: np.ndarray,
    hq_landmarks: np.ndarray,
) -> float:
    """Mean over frames of the descriptor cosine; (T, H, W, 3) uint8 RGB and (T, 68, 2)."""
    values = [
        cosine(embedder.embed(r, landmarks=lr), embedder.embed(q, landmarks=lq))
        for r, q, lr, lq in zip(restored, hq, restored_landmarks, hq_landmarks, strict=True)
    ]
    return float(np.mean(values))
