"""Restoration of whole sequences: sliding windows over face crops, and real videos end to end.

``video.restore_video`` is the whole of ``avrestore restore``; ``stream.plan_restoration``
and ``stream.restored_frames`` are its two passes, for callers that want the frames.
Nothing is imported here, so that ``restore.window`` stays light to import.
"""
