"""Locate the dlib model files shipped by the ``face-recognition-models`` package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from avrestore.errors import InputError

SHAPE_68 = "shape_predictor_68_face_landmarks.dat"
FACE_RECOGNITION = "dlib_face_recognition_resnet_model_v1.dat"
CNN_DETECTOR = "mmod_human_face_detector.dat"


def model_file(name: str) -> Path:
    """Path of the dlib model ``name`` (e.g. ``shape_predictor_68_face_landmarks.dat``).

    The package is found by path, not imported: its ``__init__`` needs ``pkg_resources``,
    which recent setuptools no longer ship.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the face-recognition-models package is not installed (pip install it; "
            "it holds dlib's landmark and identity models)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise InputError(f"dlib model {name} not found in {path.parent}")
    return path
