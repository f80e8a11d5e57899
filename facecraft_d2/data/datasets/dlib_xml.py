# Copyright (c) facecraft_d2 contributors.
"""
dlib ``imglab`` XML datasets (e.g. dlib's ``examples/faces/{training,testing}.xml``)::

    <dataset><images>
      <image file='2008_002470.jpg' width='500' height='332'>
        <box top='181' left='274' width='52' height='53' ignore='1'>
          <part name='00' x='201' y='107'/> ...
        </box>
      </image>
    </images></dataset>

``file`` is relative to the XML file's folder (or absolute). Boxes become ``BoxMode.XYWH_ABS``
``[left, top, width, height]``; ``ignore='1'`` boxes become ignore regions (``iscrowd=1``,
``ignore_reason="ignore"``); ``<part>`` landmarks are kept as ``{"name": [x, y]}``.
The ``width``/``height`` image attributes are used when present, otherwise the image header.
"""

import logging
import os
import xml.etree.ElementTree as ET
from typing import List, Optional

from detectron2.structures import BoxMode

from .common import (
    FACE_CATEGORY_ID,
    register_annotation_file,
    AnnotationFormatError,
    MissingImages,
    image_record,
    parse_numbers,
    require_file,
)

__all__ = ["load_dlib_xml", "register_dlib_xml"]

logger = logging.getLogger(__name__)


def _attrs(elem, names, path, rec, kind=float, optional=False):
    values = []
    for n in names:
        if n not in elem.attrib:
            if optional:
                return None
            raise AnnotationFormatError(path, rec, "missing attribute {!r}".format(n))
        values.append(elem.attrib[n])
    return parse_numbers(values, path, rec, kind=kind)


def load_dlib_xml(
    xml_file: str, image_root: Optional[str] = None, dataset_name: Optional[str] = None
) -> List[dict]:
    """
    Load a dlib imglab XML file to Detectron2 format.

    Args:
        xml_file: the XML file.
        image_root: folder that ``file`` attributes are relative to; defaults to the XML
            file's folder (imglab's convention).
        dataset_name: used in log messages only.

    Returns:
        list[dict]: one dict per image present on disk, with ``file_name``, ``image_id``
        (``file`` without extension), ``height``, ``width`` and ``annotations``; each has
        ``bbox`` (XYWH_ABS), ``bbox_mode``, ``category_id`` (0), ``iscrowd`` (1 for
        ``ignore='1'``, then also ``ignore_reason="ignore"``) and ``landmarks`` when the box
        has ``<part>`` children.
    """
    require_file(xml_file, "dlib imglab XML file")
    if image_root is None:
        image_root = os.path.dirname(os.path.abspath(xml_file))
    try:
        root = ET.parse(xml_file).getroot()
    except ET.ParseError as e:
        line, column = e.position
        raise AnnotationFormatError(
            xml_file, "line {}, column {}".format(line, column), "invalid XML: {}".format(e)
        ) from None
    except (ValueError, LookupError) as e:  # an unknown or multi-byte encoding declaration
        raise AnnotationFormatError(
            xml_file, "XML declaration", "unsupported encoding: {}".format(e)
        ) from None
    images = root.find("images")
    if root.tag != "dataset" or images is None:
        raise AnnotationFormatError(
            xml_file, "root element", "expected <dataset><images>...</images></dataset>"
        )
    missing = MissingImages(logger, xml_file, image_root, dataset_name)
    dataset_dicts = []
    for idx, image in enumerate(images.iter("image")):
        rel = image.attrib.get("file")
        if not rel:
            raise AnnotationFormatError(
                xml_file, "<image> #{}".format(idx), "missing attribute 'file'"
            )
        rec = "<image> #{} {!r}".format(idx, rel)
        annotations = []
        for k, box in enumerate(image.iter("box")):
            brec = "{}, <box> #{}".format(rec, k)
            top, left, width, height = _attrs(
                box, ("top", "left", "width", "height"), xml_file, brec
            )
            ignore = box.attrib.get("ignore", "0").strip()
            if ignore not in ("0", "1"):
                raise AnnotationFormatError(
                    xml_file, brec, "attribute ignore={!r} must be '0' or '1'".format(ignore)
                )
            ann = {
                "bbox": [left, top, width, height],
                "bbox_mode": BoxMode.XYWH_ABS,
                "category_id": FACE_CATEGORY_ID,
                "iscrowd": int(ignore),
            }
            if ignore == "1":
                ann["ignore_reason"] = "ignore"
            parts = {}
            for part in box.iter("part"):
                name = part.attrib.get("name")
                if name is None:
                    raise AnnotationFormatError(xml_file, brec, "a <part> has no 'name'")
                parts[name] = _attrs(
                    part, ("x", "y"), xml_file, "{}, <part> {!r}".format(brec, name)
                )
            if parts:
                ann["landmarks"] = parts
            annotations.append(ann)
        file_name = rel if os.path.isabs(rel) else os.path.join(image_root, rel)
        if not missing.check(file_name):
            continue
        size = _attrs(image, ("height", "width"), xml_file, rec, kind=int, optional=True)
        if size is not None and min(size) <= 0:
            raise AnnotationFormatError(
                xml_file, rec, "image height and width must be positive, got {}".format(size)
            )
        dataset_dicts.append(image_record(image_root, rel, size, annotations=annotations))
    missing.report()
    return dataset_dicts


def register_dlib_xml(
    name: str, xml_file: str, image_root: Optional[str] = None, **metadata
) -> None:
    """
    Register a dlib imglab XML dataset lazily, with ``evaluator_type="afw"``.

    Args:
        name: dataset name, e.g. "dlib_faces_train".
        xml_file, image_root: see :func:`load_dlib_xml`.
        metadata: extra metadata, e.g. ``dirname``.
    """
    if image_root is None:
        image_root = os.path.dirname(os.path.abspath(xml_file))
    register_annotation_file(name, load_dlib_xml, xml_file, image_root, **metadata)
