# Copyright (c) facecraft_d2 contributors.
"""The detectron2 v0.6 install: imports on a current stack, the _C stand-in, the checksum pin."""
import importlib.util
import os
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _installer():
    spec = importlib.util.spec_from_file_location(
        "install_detectron2", os.path.join(ROOT, "tools", "install_detectron2.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_detectron2_imports_first_on_current_pillow_and_numpy():
    code = (
        "import detectron2.data, detectron2.engine, detectron2.modeling, detectron2.evaluation, "
        "detectron2.utils.visualizer, detectron2.model_zoo, sys\n"
        "assert 'facecraft_d2' not in sys.modules\n"
        "import PIL, numpy\n"
        "print(PIL.__version__, numpy.__version__)\n"
        "from detectron2 import model_zoo\n"
        "print(model_zoo.get_config_file('COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    pil, numpy_version = out.stdout.split()[:2]
    assert int(pil.split(".")[0]) >= 10 and int(numpy_version.split(".")[0]) >= 2
    assert out.stdout.strip().endswith("faster_rcnn_R_50_FPN_1x.yaml")


def test_compiled_ops_raise_a_clear_error_in_the_pure_python_build():
    import torch
    from detectron2 import _C

    if not _C.__file__.endswith(".py"):
        # a detectron2 built from the official repository: its ops are real
        assert callable(_C.get_compiler_version)
        return
    from detectron2.layers import nms_rotated

    assert "no _C extension" in _C.get_compiler_version()
    with pytest.raises(_C.MissingCompiledOpError, match="pb1-detectron2==0.6.*no C\\+\\+/CUDA"):
        nms_rotated(torch.zeros(1, 5), torch.zeros(1), 0.5)
    with pytest.raises(_C.MissingCompiledOpError, match="deform_conv_forward"):
        _C.deform_conv_forward()


def test_installer_refuses_a_wrong_checksum(tmp_path):
    installer = _installer()
    bad = tmp_path / installer.SDIST_FILE
    bad.write_bytes(b"not detectron2")
    with pytest.raises(SystemExit, match="REFUSING"):
        installer.verify_sdist(str(bad))


def test_installer_patches_apply_exactly_to_the_pinned_sources(tmp_path):
    installer = _installer()
    cache = os.environ.get("FACECRAFT_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "facecraft_d2"))
    sdist = os.path.join(cache, installer.SDIST_FILE)
    from detectron2 import _C

    if not os.path.exists(sdist):
        assert not _C.__file__.endswith(".py"), "pure-Python detectron2 installed but its sdist is not cached"
        pytest.skip("detectron2 came from elsewhere (e.g. the official repository): no sdist to patch")
    installer.verify_sdist(sdist)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    src = tmp_path / f"{installer.SDIST_NAME}-{installer.SDIST_VERSION}"
    installer.patch_tree(str(src))
    text = (src / "detectron2" / "data" / "transforms" / "transform.py").read_text()
    assert "Image.BILINEAR" in text and "Image.LINEAR" not in text
    assert (src / "detectron2" / "_C.py").exists()
    assert "pkg_resources" not in (src / "detectron2" / "model_zoo" / "model_zoo.py").read_text()
    # patching an already patched tree fails loudly instead of half-applying
    with pytest.raises(SystemExit, match="applied 0 times"):
        installer.patch_tree(str(src))
