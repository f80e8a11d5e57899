# Copyright (c) facecraft_d2 contributors.
"""What ``facecraft detect`` reads: images, folders (recursive), video files, webcams."""
import logging
import os
from dataclasses import dataclass

from ..utils.image_io import IMAGE_EXTENSIONS

__all__ = ["VIDEO_EXTENSIONS", "Source", "VideoFrames", "expand_inputs"]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass
class Source:
    """
    One thing to run on. ``kind`` is "image", "video", "webcam" or "missing"; ``path`` the file (or the
    camera index); ``rel`` its path relative to the folder it was found in (output names).
    """

    kind: str
    path: str
    rel: str


def _kind(path):
    ext = os.path.splitext(path)[1].lower()
    return "video" if ext in VIDEO_EXTENSIONS else "image"


def expand_inputs(paths):
    """
    Args:
        paths (list[str]): files, folders, or webcam indices ("0").
    Returns:
        tuple[list[Source], list[str]]: the sources in a stable order, and the files skipped
        in folders because their suffix is neither an image's nor a video's. Named files are
        never skipped: a named file that is not an image fails with a clear error instead,
        and so does a path that does not exist (kind "missing").
    Raises:
        FileNotFoundError: if no path exists at all.
    """
    sources, skipped = [], []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(root, name)
                    ext = os.path.splitext(name)[1].lower()
                    rel = os.path.relpath(full, p)
                    if ext in IMAGE_EXTENSIONS or ext in VIDEO_EXTENSIONS:
                        sources.append(Source(_kind(full), full, rel))
                    else:
                        skipped.append(full)
        elif os.path.exists(p):
            sources.append(Source(_kind(p), p, os.path.basename(p)))
        elif p.isdigit():
            sources.append(Source("webcam", p, f"webcam{p}"))
        else:
            sources.append(Source("missing", p, os.path.basename(p)))
    if paths and all(s.kind == "missing" for s in sources):
        raise FileNotFoundError(f"{paths[0]}: no such file or folder (nor a webcam index)")
    return sources, skipped


class VideoFrames:
    """
    Iterate (index, BGR frame) of a video file or webcam with ``cv2.VideoCapture``, and say
    afterwards whether it ended early: ``status`` is "ok", or "ended early at frame k of N"
    when fewer frames decode than the container announces (truncated or corrupt files).

    Raises:
        OSError: from the constructor, if OpenCV cannot open it at all.
    """

    def __init__(self, source, max_frames=None):
        import cv2

        self.source = source
        target = int(source.path) if source.kind == "webcam" else source.path
        self.cap = cv2.VideoCapture(target)
        if not self.cap.isOpened():
            what = "webcam" if source.kind == "webcam" else "video"
            raise OSError(f"{source.path}: cannot open the {what} (missing codec, corrupt file, "
                          "or no such device)")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 25.0
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.expected = count if count > 0 and source.kind == "video" else None
        self.max_frames = max_frames
        self.read = 0
        self.status = "ok"

    def __len__(self):
        n = self.expected or 0
        return min(n, self.max_frames) if self.max_frames else n

    def __iter__(self):
        try:
            while self.max_frames is None or self.read < self.max_frames:
                try:
                    ok, frame = self.cap.read()
                except Exception as e:  # OpenCV raises cv2.error on some corrupt streams
                    logger.warning("%s: read failed at frame %d: %s", self.source.path, self.read, e)
                    ok, frame = False, None
                if not ok or frame is None:
                    break
                yield self.read, frame
                self.read += 1
        finally:
            self.cap.release()
        if self.expected and self.read < self.expected and not self.max_frames:
            self.status = (f"ended early at frame {self.read} of {self.expected} "
                           "(truncated or corrupt video)")
