# Copyright (c) facecraft_d2 contributors.
"""The docs keep up with the code: every config key documented, the example image present."""
import os
import runpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_config_reference_documents_every_key():
    tool = runpy.run_path(os.path.join(ROOT, "tools", "config_reference.py"))
    keys = tool["added_keys"]()
    assert any(k.startswith("MODEL.FACECRAFT.TEST.") for k in keys)
    with open(os.path.join(ROOT, "docs", "config_reference.md"), encoding="utf-8") as f:
        doc = f.read()
    missing = [k for k in keys if f"`{k}`" not in doc]
    assert not missing, f"regenerate docs/config_reference.md (tools/config_reference.py): {missing}"
    comments = tool["documented_keys"]()
    assert all(comments.get(k) for k in keys if k.startswith("MODEL.FACECRAFT.")), \
        "every MODEL.FACECRAFT key has a comment in facecraft_d2/config.py"


def test_docs_link_targets_exist():
    for rel in ("docs/assets/grace_hopper_faces.jpg", "docs/usage.md", "docs/custom_data.md",
                "docs/reproduce.md", "docs/config_reference.md"):
        assert os.path.isfile(os.path.join(ROOT, rel)), rel
