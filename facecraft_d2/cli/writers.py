# Copyright (c) facecraft_d2 contributors.
"""
Outputs of ``facecraft detect``: annotated images / videos drawn with Detectron2's
``Visualizer``, and the detections as JSON, CSV and the FDDB detection-file format.
"""
import csv
import io
import json
import os

import numpy as np

__all__ = ["DetectionLog", "draw_faces", "VideoSink"]


def draw_faces(bgr, faces):
    """
    Args:
        bgr (np.ndarray): (H, W, 3) uint8 BGR image the boxes refer to.
        faces (FaceDetections): the faces.
    Returns:
        np.ndarray: (H, W, 3) uint8 BGR image with boxes and scores drawn.
    """
    from detectron2.utils.visualizer import Visualizer

    vis = Visualizer(bgr[:, :, ::-1], metadata=None, scale=1.0)
    if len(faces):
        labels = [f"face {s:.2f}" for s in faces.scores.tolist()]
        vis.overlay_instances(boxes=faces.boxes, labels=labels,
                              assigned_colors=[(0.1, 0.9, 0.1)] * len(faces))
    return np.ascontiguousarray(vis.output.get_image()[:, :, ::-1])


class VideoSink:
    """Annotated frames -> an MJPG ``.avi`` (the codec every OpenCV build can write)."""

    def __init__(self, path, fps, size):
        import cv2

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)

    def write(self, frame):
        self.writer.write(frame)

    def close(self):
        self.writer.release()


def _face_rows(faces):
    stages = faces.stages or [""] * len(faces)
    for box, score, stage in zip(faces.boxes.tolist(), faces.scores.tolist(), stages):
        yield [round(v, 2) for v in box], round(score, 5), stage


class DetectionLog:
    """
    Collects every result of a run and renders it.

    JSON schema (``to_json``)::

        {"model": str, "backend": str, "score_threshold": float, "min_face": float,
         "images": [{"file", "height", "width", "faces": [{"box": [x1, y1, x2, y2],
                     "score", "stage"?}], "notes": [str]}],
         "videos": [{"file", "fps", "status", "frames": [{"frame": int, "faces": [...]}]}],
         "failures": [{"file", "error"}], "skipped": [str], "summary": {...}}

    Boxes are XYXY pixels of the displayed image (EXIF orientation applied), full size.
    """

    def __init__(self, header):
        self.header = dict(header)
        self.images, self.videos, self.failures, self.skipped = [], [], [], []
        self._fddb_names = []

    def add_image(self, faces, name=None):
        """``name``: the image's name in the FDDB file (default: its path without suffix)."""
        self.images.append(faces.to_dict())
        self._fddb_names.append(name or os.path.splitext(str(faces.source))[0])

    def add_video(self, path, fps, frames, status):
        self.videos.append({"file": path, "fps": fps, "status": status, "frames": frames})

    def add_failure(self, path, error):
        self.failures.append({"file": path, "error": error})

    def to_json(self, summary):
        return json.dumps({**self.header, "images": self.images, "videos": self.videos,
                           "failures": self.failures, "skipped": self.skipped,
                           "summary": summary}, indent=2)

    def _all_faces(self):
        for im in self.images:
            for f in im["faces"]:
                yield im["file"], "", f
        for v in self.videos:
            for fr in v["frames"]:
                for f in fr["faces"]:
                    yield v["file"], fr["frame"], f

    def to_csv(self):
        """One row per face: file, frame (videos), x1, y1, x2, y2, score, stage."""
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["file", "frame", "x1", "y1", "x2", "y2", "score", "stage"])
        for path, frame, f in self._all_faces():
            w.writerow([path, frame, *f["box"], f["score"], f.get("stage", "")])
        return out.getvalue()

    def to_fddb(self):
        """
        The FDDB detection-file format (one block per image: its name without suffix, the
        number of faces, then ``left top width height score`` lines; names are relative to
        the folder searched, so a run on FDDB's ``originalPics`` gives ``2002/08/11/big/img_591``), as written for the
        official evaluation tool by :func:`facecraft_d2.evaluation.fddb_evaluation.write_fddb_files`.
        """
        lines = []
        for im, name in zip(self.images, self._fddb_names):
            lines.append(f"{name}\n{len(im['faces'])}\n")
            for f in im["faces"]:
                x1, y1, x2, y2 = f["box"]
                lines.append(f"{x1:.3f} {y1:.3f} {x2 - x1:.3f} {y2 - y1:.3f} {f['score']:.6f}\n")
        return "".join(lines)
