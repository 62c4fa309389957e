"""Restoration of whole sequences: sliding windows over face crops, and real videos end to end.

``video.restore_video`` is the whole of ``avrestore restore``; ``stream.plan_restoration``
and ``stream.restored_frames`` are its two passes, for callers that want the frames;
``runtime`` says how it runs (``REFERENCE``, ``REALTIME``: PyTorch or ONNX Runtime, threads
beside the model from ``overlap``) and ``timing`` where its time goes.
Nothing is imported here, so that ``restore.window`` stays light to import.
"""
