"""Pulled sources: cameras and microphones the daemon reads itself (RTSP, HTTP MJPEG, video files, V4L2)."""
