"""Media I/O: decode and encode video and audio with PyAV, write outputs atomically."""
