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

from .catalog import register_train_split
from .datasets.aflw import register_aflw
from .datasets.afw import register_afw
from .datasets.background import register_background_images
from .datasets.dlib_xml import register_dlib_xml
from .datasets.fddb import FDDB_FOLD_SIZES, fddb_ellipse_file, register_fddb
from .datasets.mtfl import MTFL_INDEX_FILES, register_mtfl
from .datasets.threer import register_threer
from .datasets.widerface import register_widerface

__all__ = [
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
    # widerface_train minus the 10% that the cascades hold out (MODEL.FACECRAFT.SAMPLER.VAL_FRACTION)
    register_train_split("widerface_train", 0.1)


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
