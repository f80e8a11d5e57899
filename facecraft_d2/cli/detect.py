# Copyright (c) facecraft_d2 contributors.
"""
Detect faces in images, folders (searched recursively), video files and webcams.

Examples:
  facecraft detect photo.jpg                          # one line per file, summary
  facecraft detect photos/ --out faces/ --json --csv  # annotated copies + detections
  facecraft detect clip.mp4 --out faces/              # annotated clip.avi, per-frame faces
  facecraft detect 0 --max-frames 300 --out cam/      # webcam 0
  facecraft detect photo.jpg --json > faces.json      # JSON on stdout (no --out)

Bad inputs (unreadable, truncated, empty, not an image, too large to decode) are reported by
name and skipped; videos that end early are kept up to the last decodable frame. Exit status:
0 when every input was processed, 3 when some failed (the others are processed and written),
1 on an error that stops the run (e.g. an unknown model).

Boxes are XYXY pixels of the image as displayed (EXIF orientation applied), at full size.
"""
import os
import sys
import time

from tqdm import tqdm

from ..predictor import POSITIVE_INT
from .common import add_model_options, add_verbose_option, build_detector, checked, formatter
from .sources import VideoFrames, expand_inputs
from .writers import DetectionLog, VideoSink, draw_faces

__all__ = ["add_parser", "run"]

EXIT_SOME_FAILED = 3


def add_parser(subparsers):
    p = subparsers.add_parser("detect", help="detect faces in images, folders, videos, webcams",
                              description=__doc__, formatter_class=formatter)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="image files, folders (recursive), video files, or a webcam index (0)")
    add_model_options(p)
    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, metavar="DIR",
                   help="write annotated images / videos (Detectron2 Visualizer) and the "
                        "--json/--csv/--fddb files (detections.json, detections.csv, "
                        "detections_fddb.txt) into DIR; without it, one format may go to stdout")
    o.add_argument("--json", action="store_true", help="write the detections as JSON")
    o.add_argument("--csv", action="store_true",
                   help="write one CSV row per face: file, frame, x1, y1, x2, y2, score, stage")
    o.add_argument("--fddb", action="store_true",
                   help="write the FDDB detection-file format (name, count, "
                        "'left top width height score' lines) for the images")
    o.add_argument("--no-draw", action="store_true", help="with --out, skip annotated images")
    o.add_argument("--max-frames", type=checked(POSITIVE_INT), default=None,
                   help="stop each video / webcam after this many frames (webcams run until "
                        "Ctrl-C otherwise)")
    add_verbose_option(p)
    p.set_defaults(func=run)
    return p


def _echo(msg, quiet):
    if not quiet:
        tqdm.write(msg, file=sys.stdout)


class _Run:
    """State of one ``facecraft detect`` run."""

    def __init__(self, args, detector, log):
        self.args, self.detector, self.log = args, detector, log
        self.quiet = not args.out and (args.json or args.csv or args.fddb)
        self.num_images = self.num_frames = self.num_faces = 0
        self.model_seconds = 0.0
        self.video_warnings = []

    def _annotated_path(self, rel, suffix=None):
        root, ext = os.path.splitext(rel)
        path = os.path.join(self.args.out, root + (suffix or ext or ".jpg"))
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return path

    def _finish_image(self, src, loaded, faces):
        import cv2

        self.log.add_image(faces, os.path.splitext(src.rel)[0].replace(os.sep, "/"))
        self.num_images += 1
        self.num_faces += len(faces)
        self.model_seconds += faces.seconds
        _echo(f"{src.path}: {len(faces)} face(s)" + "".join(f"; {n}" for n in faces.notes
                                                            if "downscaled" in n), self.quiet)
        if self.args.out and not self.args.no_draw:
            bgr, w = loaded[0], loaded[1][1]
            k = bgr.shape[1] / float(w)
            shown = type(faces)(faces.boxes * k, faces.scores, faces.stages)
            ext = os.path.splitext(src.rel)[1].lower()
            cv2.imwrite(self._annotated_path(src.rel, None if ext in (".jpg", ".jpeg", ".png")
                                             else ".jpg"), draw_faces(bgr, shown))

    def _detect(self, loaded):
        """
        Outputs of :meth:`FaceDetector.load` -> [FaceDetections or the exception], by one model
        call or, if it fails, one call per image to name the culprit.
        """
        try:
            return self.detector.detect_loaded(loaded)
        except Exception as e:
            if len(loaded) == 1:
                return [e]
            return [self._detect([item])[0] for item in loaded]

    def _flush(self, pending):
        """Report the pending images in input order, after detecting on those that loaded."""
        found = iter(self._detect([item for _, item in pending if not isinstance(item, Exception)]))
        for src, item in pending:
            result = item if isinstance(item, Exception) else next(found)
            if isinstance(result, Exception):
                self._fail(src, result)
            else:
                self._guarded(src, lambda s=src, i=item, r=result: self._finish_image(s, i, r))
        pending.clear()

    def _fail(self, src, error):
        reason = str(error) or type(error).__name__
        msg = reason if reason.startswith(src.path) else f"{src.path}: {reason}"
        self.log.add_failure(src.path, msg[len(src.path) + 2:] if msg.startswith(src.path) else msg)
        _echo(f"FAILED {msg}", self.quiet)

    def _guarded(self, src, fn):
        try:
            fn()
        except Exception as e:  # one bad input never stops a run over many files
            self._fail(src, e)

    def run(self, sources):
        """
        Every source, reported in input order: images in batches of ``batch_size`` (those that
        fail to load wait in the batch for their turn), videos and missing paths in between.
        """
        pending = []
        bar = tqdm(sources, desc="files", unit="file", file=sys.stderr,
                   disable=len(sources) < 2 or None)  # folders, on terminals only
        for src in bar:
            if src.kind == "image":
                try:
                    pending.append((src, self.detector.load(src.path)))
                except Exception as e:
                    pending.append((src, e))
                loaded = sum(not isinstance(item, Exception) for _, item in pending)
                if loaded >= self.detector.batch_size:
                    self._flush(pending)
                continue
            self._flush(pending)
            if src.kind == "missing":
                self._fail(src, "no such file or folder (nor a webcam index)")
                continue
            status = []
            self._guarded(src, lambda s=src: status.append(self.video(s)))
            if status and status[0] != "ok":
                self.video_warnings.append(f"{src.path}: {status[0]}")
        self._flush(pending)

    def video(self, src):
        frames_out, sink = [], None
        frames = VideoFrames(src, max_frames=self.args.max_frames)
        bar = tqdm(total=len(frames) or None, desc=os.path.basename(src.rel), unit="frame",
                   file=sys.stderr, disable=None)  # shown on terminals only
        try:
            for index, frame in frames:
                faces = self.detector.detect(frame, format="BGR")
                self.num_frames += 1
                self.num_faces += len(faces)
                self.model_seconds += faces.seconds
                frames_out.append({"frame": index, "faces": faces.to_dict()["faces"]})
                if self.args.out and not self.args.no_draw:
                    if sink is None:
                        path = self._annotated_path(src.rel, ".avi")
                        sink = VideoSink(path, frames.fps, (frame.shape[1], frame.shape[0]))
                    sink.write(draw_faces(frame, faces))
                bar.update(1)
        finally:
            bar.close()
            if sink is not None:
                sink.close()
        if not frames_out:
            raise OSError(f"{src.path}: no frame could be decoded (corrupt or empty video)")
        self.log.add_video(src.path, frames.fps, frames_out, frames.status)
        total = sum(len(f["faces"]) for f in frames_out)
        note = "" if frames.status == "ok" else f"; WARNING: {frames.status}"
        _echo(f"{src.path}: {len(frames_out)} frame(s), {total} face(s){note}", self.quiet)
        return frames.status


def _summary(run, num_files, seconds, video_warnings):
    processed = run.num_images + run.num_frames
    summary = {
        "files": num_files, "images": run.num_images, "video_frames": run.num_frames,
        "faces": run.num_faces, "failures": len(run.log.failures), "skipped": len(run.log.skipped),
        "seconds": round(seconds, 3),
        "ms_per_image_model": round(1000 * run.model_seconds / max(processed, 1), 1),
        "images_per_second": round(processed / seconds, 2) if seconds > 0 else None,
    }
    lines = [f"facecraft detect: {num_files} file(s): {run.num_images} image(s), "
             f"{run.num_frames} video frame(s); {run.num_faces} face(s); "
             f"{len(run.log.failures)} failed; {len(run.log.skipped)} skipped (not images); "
             f"{seconds:.1f} s ({summary['images_per_second']} images/s, "
             f"{summary['ms_per_image_model']} ms/image in the model)"]
    if run.log.failures:
        lines.append("failed:")
        lines += [f"  {f['file']}: {f['error']}" for f in run.log.failures]
    lines += [f"warning: {w}" for w in video_warnings]
    print("\n".join(lines), file=sys.stderr)
    return summary


def run(args):
    formats = [f for f in ("json", "csv", "fddb") if getattr(args, f)]
    if not args.out and len(formats) > 1:
        raise ValueError("several output formats need --out DIR (only one can go to stdout)")
    sources, skipped = expand_inputs(args.paths)
    detector = build_detector(args)
    log = DetectionLog({"model": detector.name, "backend": detector.backend,
                        "score_threshold": detector.score_threshold,
                        "min_face": detector.min_face})
    log.skipped = skipped
    run_state = _Run(args, detector, log)
    start = time.perf_counter()
    run_state.run(sources)
    summary = _summary(run_state, len(sources), time.perf_counter() - start,
                       run_state.video_warnings)
    rendered = {"json": lambda: log.to_json(summary), "csv": log.to_csv, "fddb": log.to_fddb}
    names = {"json": "detections.json", "csv": "detections.csv", "fddb": "detections_fddb.txt"}
    for fmt in formats:
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, names[fmt]), "w", encoding="utf-8") as f:
                f.write(rendered[fmt]())
        else:
            sys.stdout.write(rendered[fmt]())
            sys.stdout.write("\n" if fmt == "json" else "")
    return EXIT_SOME_FAILED if log.failures else 0
