# Copyright (c) facecraft_d2 contributors.
"""
Helpers shared by the face dataset loaders.

Every loader in :mod:`facecraft_d2.data.datasets` follows the same rules:

* One category, ``category_id`` 0 ("face").
* Malformed annotation files raise :class:`AnnotationFormatError`, which names the file and
  the record (line number, record index or image name). No bare ``IndexError`` /
  ``ValueError`` / ``KeyError`` escapes from a parser and no dataset is silently shortened.
* A missing annotation file raises ``FileNotFoundError`` with the path that was expected.
* Images listed in an annotation file but absent on disk are skipped and counted, and the
  loader logs ONE warning per dataset (see :class:`MissingImages`).
* Image height/width come from the image header (PIL opens files lazily, pixels are not
  decoded) when the annotation format does not give them.
"""

import logging
import os
from typing import Iterable, List, Optional, Sequence, Tuple

from PIL import Image

from detectron2.structures import BoxMode

__all__ = [
    "FACE_CLASSES",
    "register_face_dataset",
    "FACE_CATEGORY_ID",
    "AnnotationFormatError",
    "MissingImages",
    "require_file",
    "image_size",
    "parse_numbers",
    "read_text_lines",
    "parse_counted_records",
    "image_id_from_path",
    "count_annotations",
]

FACE_CLASSES = ["face"]
"""The single class of every face dataset (``thing_classes`` metadata)."""
FACE_CATEGORY_ID = 0
"""``category_id`` of every face annotation."""

_EXIF_ORIENTATION = 0x0112


class AnnotationFormatError(ValueError):
    """
    An annotation file does not follow its documented format.

    Attributes:
        path (str): the annotation file.
        record (str): where in the file: a line number, record index or image name.
        reason (str): what is wrong.
    """

    def __init__(self, path: str, record, reason: str):
        self.path = str(path)
        self.record = str(record)
        self.reason = reason
        super().__init__(
            "Malformed annotation file {}, record {}: {}".format(self.path, self.record, reason)
        )

    def __reduce__(self):
        # keep the exception picklable (DataLoader workers, multiprocessing)
        return (type(self), (self.path, self.record, self.reason))


def require_file(path: str, what: str) -> str:
    """
    Raise a clear ``FileNotFoundError`` if an annotation file is absent.

    Args:
        path: the expected file.
        what: a short description used in the message, e.g. "FDDB ellipse list".

    Returns:
        ``path``, unchanged.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            "{} not found: expected {} (see datasets/README.md for the expected layout "
            "under $DETECTRON2_DATASETS).".format(what, path)
        )
    return path


def image_size(file_name: str) -> Tuple[int, int]:
    """
    Read an image's size from its header without decoding the pixels.

    Like ``detectron2.data.detection_utils.read_image``, an EXIF orientation that rotates the
    image by 90 degrees (tags 5-8) swaps height and width, so the size matches the image that
    Detectron2 will load.

    Args:
        file_name: path of an existing image.

    Returns:
        (height, width) in pixels.
    """
    with Image.open(file_name) as img:
        width, height = img.size
        try:
            orientation = img.getexif().get(_EXIF_ORIENTATION)
        except Exception:  # a corrupt EXIF block: read_image ignores it too
            orientation = None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return height, width


def parse_numbers(
    tokens: Sequence[str], path: str, record, count: Optional[int] = None, kind=float
) -> List:
    """
    Convert text fields to numbers, raising :class:`AnnotationFormatError` on failure.

    Args:
        tokens: the fields (strings).
        path, record: reported in the error.
        count: if given, the exact number of fields required.
        kind: ``float`` or ``int``. ``int`` also accepts integral floats such as "3.0".

    Returns:
        list of numbers of type ``kind``.
    """
    if count is not None and len(tokens) != count:
        raise AnnotationFormatError(
            path,
            record,
            "expected {} numbers, got {}: {!r}".format(count, len(tokens), " ".join(tokens)),
        )
    values = []
    for tok in tokens:
        try:
            if kind is int:
                value = float(tok)
                if not value.is_integer():
                    raise ValueError(tok)
                value = int(value)
            else:
                value = float(tok)
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError(tok)
        except ValueError:
            raise AnnotationFormatError(
                path,
                record,
                "field {!r} is not a valid {}".format(tok, "integer" if kind is int else "number"),
            ) from None
        values.append(value)
    return values


def read_text_lines(path: str) -> List[str]:
    """
    Read a UTF-8 (or ASCII) text annotation file as a list of stripped lines.

    Raises:
        AnnotationFormatError: naming the line of the first byte that is not UTF-8 (e.g. a
            binary or corrupted file), instead of a bare ``UnicodeDecodeError``.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AnnotationFormatError(
            path,
            "line {}".format(data.count(b"\n", 0, e.start) + 1),
            "not UTF-8 text (byte {} at offset {}): a binary or corrupted file?".format(
                hex(data[e.start]), e.start
            ),
        ) from None
    return [line.strip() for line in text.splitlines()]


def _record_header(lines: List[str], i: int, path: str, index: int, is_name, bad_name):
    """
    Read the name and face-count lines of the record at ``lines[i]`` (see
    :func:`parse_counted_records`).

    Returns:
        tuple: (name, rec, count, index of the first face line), ``rec`` naming the record in
        errors as ``#<index> '<name>'``.
    """
    name = lines[i]
    rec = "#{} {!r}".format(index, name)
    if not is_name(name):
        raise AnnotationFormatError(
            path, "#{} at line {}".format(index, i + 1), bad_name.format(name)
        )
    i += 1
    where = "{} at line {}".format(rec, i + 1)
    if i >= len(lines) or not lines[i]:
        raise AnnotationFormatError(path, where, "truncated record: missing the face count")
    (count,) = parse_numbers(lines[i].split(), path, where, 1, int)
    if count < 0:
        raise AnnotationFormatError(path, where, "negative face count {}".format(count))
    return name, rec, count, i + 1


def parse_counted_records(path: str, is_name, bad_name: str, read_faces) -> List[Tuple[str, list]]:
    """
    Parse a text annotation file of repeated records (the FDDB ellipse lists and the WIDER
    FACE text ground truth)::

        <image name>
        <n faces>
        <face lines>

    Blank lines between records are skipped.

    Args:
        path: the annotation file.
        is_name (callable): ``is_name(line)``, whether a line can be a record's image name.
        bad_name: the error reason for a line that cannot, with ``{!r}`` for the line.
        read_faces (callable): ``read_faces(lines, i, count, path, rec)`` parses the record's
            ``count`` faces from ``lines[i]`` on and returns ``(faces, index of the line after
            them)``; ``rec`` names the record in errors (``#<index> '<name>'``).

    Returns:
        list of (image name, faces), in file order.

    Raises:
        AnnotationFormatError: naming the file, the record index, the image and the line.
    """
    lines = read_text_lines(path)
    records = []
    i = 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        name, rec, count, i = _record_header(lines, i, path, len(records), is_name, bad_name)
        faces, i = read_faces(lines, i, count, path, rec)
        records.append((name, faces))
    return records


def image_id_from_path(relative_path: str) -> str:
    """
    The ``image_id`` convention of facecraft_d2: the image path relative to the image root,
    with forward slashes and without the file extension (e.g. "2002/08/11/big/img_591").
    """
    return os.path.splitext(relative_path.replace(os.sep, "/"))[0]


class MissingImages:
    """
    Count images that an annotation file lists but that are absent on disk, and report them
    with ONE warning per dataset.

    Example:
    ::
        missing = MissingImages(logger, txt_file, image_root, dataset_name)
        for rel in listed_images:
            file_name = os.path.join(image_root, rel)
            if not missing.check(file_name):
                continue
            ...
        missing.report()
    """

    def __init__(
        self,
        logger: logging.Logger,
        annotation_file: str,
        image_root: str,
        dataset_name: Optional[str] = None,
    ):
        self._logger = logger
        self.annotation_file = annotation_file
        self.image_root = image_root
        self.dataset_name = dataset_name
        self.num_listed = 0
        self.num_missing = 0
        self.examples: List[str] = []

    def check(self, file_name: str) -> bool:
        """Return whether ``file_name`` exists; count it as listed, and as missing if absent."""
        self.num_listed += 1
        if os.path.isfile(file_name):
            return True
        self.num_missing += 1
        if len(self.examples) < 3:
            self.examples.append(file_name)
        return False

    def report(self) -> None:
        """Log one warning if any listed image was missing (nothing otherwise)."""
        if self.num_missing == 0:
            return
        what = (
            "Dataset '{}' ({})".format(self.dataset_name, self.annotation_file)
            if self.dataset_name
            else "Annotation file {}".format(self.annotation_file)
        )
        self._logger.warning(
            "%s: %d of %d listed images are missing under the expected image folder %s; "
            "skipped them (e.g. %s).",
            what,
            self.num_missing,
            self.num_listed,
            self.image_root,
            ", ".join(self.examples),
        )


def count_annotations(dataset_dicts: Iterable[dict]) -> Tuple[int, int]:
    """Return (number of annotations, number of them with ``iscrowd=1``)."""
    total = crowd = 0
    for d in dataset_dicts:
        for ann in d["annotations"]:
            total += 1
            crowd += int(ann.get("iscrowd", 0))
    return total, crowd


def register_face_dataset(name: str, loader, evaluator_type: str, **metadata) -> None:
    """
    Register a face dataset lazily: ``DatasetCatalog`` gets ``loader`` (called without
    arguments on ``DatasetCatalog.get(name)``), ``MetadataCatalog`` gets
    ``thing_classes=["face"]``, ``evaluator_type`` and ``metadata`` (paths and the like).
    """
    from detectron2.data import DatasetCatalog, MetadataCatalog

    DatasetCatalog.register(name, loader)
    MetadataCatalog.get(name).set(
        thing_classes=list(FACE_CLASSES), evaluator_type=evaluator_type, **metadata
    )


def register_annotation_file(name: str, loader, annotation_file: str, image_root: str,
                             evaluator_type: str = "afw", **metadata) -> None:
    """
    Register, lazily, a dataset read by ``loader(annotation_file, image_root, dataset_name=name)``
    (the ``load_*`` functions of this package), with ``annotation_file`` and ``image_root`` in
    its metadata besides ``metadata`` (e.g. ``dirname``).
    """
    register_face_dataset(
        name,
        lambda: loader(annotation_file, image_root, dataset_name=name),
        evaluator_type,
        annotation_file=annotation_file,
        image_root=image_root,
        **metadata,
    )


def image_record(image_root: str, relative_path: str, size=None, **fields) -> dict:
    """
    The Detectron2 dict of one image file: ``file_name`` (``relative_path`` under
    ``image_root``, or itself when absolute), ``image_id`` (the relative path without
    extension), ``height`` and ``width`` (``size``, or read from the file header when None),
    then ``fields`` (e.g. ``annotations``).
    """
    file_name = os.path.join(image_root, relative_path)
    height, width = size if size is not None else image_size(file_name)
    return {"file_name": file_name, "image_id": image_id_from_path(relative_path),
            "height": height, "width": width, **fields}


def landmark_face(points, names, path: str, rec, **fields) -> dict:
    """
    The annotation of a face given by landmarks: its square box by
    :func:`landmarks_to_square_box` (XYXY_ABS), then ``fields`` (e.g. the landmarks).

    Raises:
        AnnotationFormatError: naming ``path`` and record ``rec``, when the points are
            malformed or determine no box.
    """
    from .landmarks import landmarks_to_square_box

    try:
        box = landmarks_to_square_box(points, names)
    except ValueError as e:
        raise AnnotationFormatError(path, rec, str(e)) from None
    if box is None:
        raise AnnotationFormatError(
            path, rec, "its landmarks determine no box (at least two distinct points are needed)"
        )
    return {"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "category_id": FACE_CATEGORY_ID,
            "iscrowd": 0, **fields}
