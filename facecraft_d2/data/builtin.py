# Copyright (c) facecraft_d2 contributors.
"""
Registers the face datasets under ``$DETECTRON2_DATASETS`` (default ``./datasets``) with
Detectron2's catalogs, in the style of ``detectron2/data/datasets/builtin.py``.

Registration is lazy: nothing is read until ``DatasetCatalog.get(name)``, so importing this
module never fails when data is absent. See datasets/README.md for the expected layout and
where to obtain each dataset. To register your own copy of a dataset, call the
``register_<format>`` functions of :mod:`facecraft_d2.data.datasets` with new names.
"""

import os

from detectron2.data import MetadataCatalog

from .catalog import register_concat, register_heldout_split, register_subset, register_train_split
from .datasets.aflw import register_aflw
from .datasets.afw import register_afw
from .datasets.background import register_background_images
from .datasets.dlib_xml import register_dlib_xml
from .datasets.fddb import FDDB_FOLD_SIZES, fddb_ellipse_file, register_fddb
from .datasets.mtfl import MTFL_INDEX_FILES, register_mtfl
from .datasets.threer import register_threer
from .datasets.widerface import register_widerface
from .splits import VAL_FRACTION

FDDB_FOLDS_1_5 = "fddb_folds_01_05"
"""FDDB folds 1-5 as one dataset (one ROC over the union of their images): the dev benchmark."""
WIDER_TRAIN_HELDOUT = "widerface_train_heldout"
"""The validation split of widerface_train that no cascade trains on."""

__all__ = [
    "FDDB_FOLDS_1_5",
    "WIDER_TRAIN_HELDOUT",
    "register_fddb_folds",
    "register_all_widerface",
    "register_all_fddb",
    "register_all_afw",
    "register_all_aflw",
    "register_all_threer",
    "register_all_dlib_faces",
    "register_all_mtfl",
    "register_all_face_negatives",
    "register_all_face_datasets",
]

# ==== Predefined splits for WIDER FACE ===========
_WIDERFACE_SPLITS = {
    # name: (split, evaluator_type)
    "widerface_train": ("train", "afw"),
    "widerface_val": ("val", "wider"),
}


def register_all_widerface(root):
    """Register ``widerface_train`` and ``widerface_val`` from ``<root>/widerface``."""
    base = os.path.join(root, "widerface")
    for name, (split, evaluator_type) in _WIDERFACE_SPLITS.items():
        metadata = {"dirname": base, "split": split}
        if split == "val":
            metadata["gt_dir"] = os.path.join(base, "eval_tools", "ground_truth")
        register_widerface(
            name,
            os.path.join(base, "wider_face_split", "wider_face_{}_bbx_gt.txt".format(split)),
            os.path.join(base, "WIDER_{}".format(split), "images"),
            evaluator_type=evaluator_type,
            **metadata,
        )
    # widerface_train minus the 10% that the cascades hold out (MODEL.FACECRAFT.SAMPLER.VAL_FRACTION),
    # and that 10% (for tuning thresholds on images no model was trained on)
    register_train_split("widerface_train", VAL_FRACTION)
    register_heldout_split("widerface_train", VAL_FRACTION)
    # every 8th val image (132 of the 1,054 in ../shared, all events): quick evaluations
    register_subset("widerface_val", step=8)


# ==== Predefined splits for FDDB ===========
def register_all_fddb(root):
    """Register ``fddb_fold_01`` ... ``fddb_fold_10`` and ``fddb_all`` from ``<root>/FDDB``."""
    base = os.path.join(root, "FDDB")
    image_root = os.path.join(base, "originalPics")
    folds = sorted(FDDB_FOLD_SIZES)
    for fold in folds:
        register_fddb(
            "fddb_fold_{:02d}".format(fold),
            [fddb_ellipse_file(base, fold)],
            image_root,
            fold=fold,
            dirname=base,
        )
    register_fddb(
        "fddb_all", [fddb_ellipse_file(base, f) for f in folds], image_root, fold=None, dirname=base
    )
    register_fddb_folds((1, 2, 3, 4, 5))  # the dev set: folds 1-5 as one ROC


def register_fddb_folds(folds=(1, 2, 3, 4, 5)):
    """
    Register the union of FDDB folds as one dataset, e.g. ``fddb_folds_01_05`` for folds 1-5.

    Args:
        folds (sequence[int]): consecutive fold numbers.
    Returns:
        str: the registered name.
    """
    bases = ["fddb_fold_{:02d}".format(f) for f in folds]
    metas = [MetadataCatalog.get(n) for n in bases]
    return register_concat(
        "fddb_folds_{:02d}_{:02d}".format(folds[0], folds[-1]),
        bases,
        fold=None,
        folds=list(folds),
        ellipse_files=[f for m in metas for f in m.get("ellipse_files", [])],
        num_images_in_fold=sum(m.get("num_images_in_fold", 0) for m in metas),
    )


# ==== Predefined splits for AFW, AFLW, 3R and dlib's example faces ===========
def register_all_afw(root):
    """Register ``afw_test`` from ``<root>/AFW`` (``anno.mat`` + ``images/``)."""
    base = os.path.join(root, "AFW")
    register_afw(
        "afw_test", os.path.join(base, "anno.mat"), os.path.join(base, "images"), dirname=base
    )


def register_all_aflw(root):
    """Register ``aflw_train`` from ``<root>/aflw/data`` (``aflw.sqlite`` + ``flickr/``)."""
    base = os.path.join(root, "aflw", "data")
    register_aflw(
        "aflw_train", os.path.join(base, "aflw.sqlite"), os.path.join(base, "flickr"), dirname=base
    )


def register_all_threer(root):
    """Register ``threer_train`` from ``<root>/threer`` (``train.json`` + ``images/``)."""
    base = os.path.join(root, "threer")
    register_threer(
        "threer_train", os.path.join(base, "train.json"), os.path.join(base, "images"), dirname=base
    )


def register_all_dlib_faces(root):
    """Register ``dlib_faces_train`` / ``dlib_faces_test`` from ``<root>/dlib_faces``."""
    base = os.path.join(root, "dlib_faces")
    for name, xml in [("dlib_faces_train", "training.xml"), ("dlib_faces_test", "testing.xml")]:
        register_dlib_xml(name, os.path.join(base, xml), base, dirname=base)


# ==== Extra training data: MTFL faces and face-free background images ===========
# listed MTFL faces whose landmarks are shifted off the face (see register_all_mtfl)
MTFL_BAD_LANDMARKS = ("net_7876/_*",)


def register_all_mtfl(root):
    """
    Register ``mtfl_train`` from ``<root>/MTFL``: both index files (``new_training.txt`` and
    ``new_testing.txt``, 12,995 faces), used as detector training data, less the 2,350
    ``net_7876/_<pose>_*`` faces, whose landmarks lie well above the face (median nose y 13 px
    against 42 elsewhere in the 80x80 crops; checked by drawing them): 10,645 faces.
    """
    base = os.path.join(root, "MTFL")
    register_mtfl(
        "mtfl_train", [os.path.join(base, f) for f in MTFL_INDEX_FILES], base,
        exclude=MTFL_BAD_LANDMARKS, dirname=base,
    )


def register_all_face_negatives(root):
    """Register ``face_negatives`` from ``<root>/negatives`` (photos without faces)."""
    base = os.path.join(root, "negatives")
    register_background_images("face_negatives", base, dirname=base)
    # minus the 10% validation split (as widerface_train_trainsplit), for the R-CNN models
    register_train_split("face_negatives", VAL_FRACTION)


def register_all_face_datasets(root):
    """Register every predefined face dataset found (or expected) under ``root``."""
    register_all_widerface(root)
    register_all_fddb(root)
    register_all_afw(root)
    register_all_aflw(root)
    register_all_threer(root)
    register_all_dlib_faces(root)
    register_all_mtfl(root)
    register_all_face_negatives(root)


if __name__.endswith(".builtin"):
    # Assume pre-defined datasets live in `./datasets`.
    _root = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
    register_all_face_datasets(_root)
