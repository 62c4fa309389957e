"""Faces in video frames: detection, one-face tracking, square crops, dlib landmarks, identity.

Every function here works on RGB uint8 images and pixel coordinates ``(x, y)``; boxes are
``(x0, y0, x1, y1)`` float32 with ``x1``/``y1`` exclusive.
"""
