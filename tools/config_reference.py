#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Write docs/config_reference.md: every config key that ``add_facecraft_config`` adds
(``MODEL.FACECRAFT.*``, ``MODEL.ZF.*``, ``TEST.FDDB.*``, ``TEST.AFW.*``), with its default and the
comment above it in ``facecraft_d2/config.py``.

    .venv/bin/python tools/config_reference.py [--output docs/config_reference.md]
"""
import argparse
import inspect
import re

from detectron2.config import CfgNode, get_cfg

from facecraft_d2 import config as fc_config

_ASSIGN = re.compile(r"^\s*_C\.([A-Z0-9_.]+)\s*=\s*(?!CN\(\))")


def documented_keys():
    """Key -> comment (the ``#`` lines right above its assignment in config.py)."""
    out, comment = {}, []
    for line in inspect.getsource(fc_config).splitlines():  # every add_*_config function
        stripped = line.strip()
        if stripped.startswith("#") and not set(stripped) <= {"#", "-", " "}:
            comment.append(stripped.lstrip("#").strip())
            continue
        m = _ASSIGN.match(line)
        if m:
            out[m.group(1)] = " ".join(comment)
        comment = []
    return out


def added_keys():
    """Every leaf key add_facecraft_config adds to detectron2's defaults, with its default."""
    base, cfg = get_cfg(), get_cfg()
    fc_config.add_facecraft_config(cfg)

    def leaves(node, prefix=""):
        for k, v in node.items():
            if isinstance(v, CfgNode):
                yield from leaves(v, prefix + k + ".")
            else:
                yield prefix + k, v

    known = dict(leaves(base))
    return {k: v for k, v in leaves(cfg) if k not in known}


def render():
    comments, keys = documented_keys(), added_keys()
    lines = [
        "# Config reference",
        "",
        "Every key that `facecraft_d2.add_facecraft_config(cfg)` adds to Detectron2's config, with",
        "its default and meaning (generated from `facecraft_d2/config.py` by",
        "`tools/config_reference.py`; regenerate it after changing a key). Set keys in a YAML",
        "config (`_BASE_` chains) or on the command line (`KEY VALUE` after the options of",
        "`tools/train_net.py`, `--opts KEY VALUE` for `facecraft detect` / `facecraft eval`).",
        "",
    ]
    section = None
    for key in sorted(keys, key=lambda k: (k.rsplit(".", 1)[0], list(keys).index(k))):
        parent = key.rsplit(".", 1)[0]
        if parent != section:
            section = parent
            lines += ["", f"## `{parent}`", "", "| key | default | meaning |", "|---|---|---|"]
        default = repr(keys[key]).replace("|", "\\|")
        lines.append(f"| `{key}` | `{default}` | {comments.get(key, '').replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="docs/config_reference.md")
    args = parser.parse_args()
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(render())
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
