# Copyright (c) facecraft_d2 contributors.
"""
Run ``tools/train_net.py`` with a checkpoint write that stops at a chosen point, so that a test
can SIGKILL the process exactly there (not a test module: pytest does not collect it).

    python tests/engine/interrupt_helper.py --file model_0000003.pth --when during \\
        --signal /tmp/ready -- --config-file ... --resume OUTPUT_DIR ...

``--when during``: the ``--nth`` write of a file named ``--file`` writes half of its bytes,
flushes them to disk, creates the ``--signal`` file and sleeps (a kill mid-write).
``--when after``: the write completes, then the process signals and sleeps (a kill between
writes). The other writes and the training itself are untouched.
"""
import argparse
import io
import os
import runpy
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _stop(signal_file):
    with open(signal_file, "w") as f:
        f.write(str(os.getpid()))
    while True:  # wait for SIGKILL
        time.sleep(60)


def install(file_name, when, nth, signal_file):
    """Patch :func:`facecraft_d2.checkpoint.checkpointer.atomic_write` to stop at the chosen write."""
    from facecraft_d2.checkpoint import checkpointer as checkpoint

    original = checkpoint.atomic_write
    calls = {"n": 0}

    def atomic_write(path, write, mode="wb"):
        if os.path.basename(path) != file_name:
            return original(path, write, mode)
        calls["n"] += 1
        if calls["n"] != nth:
            return original(path, write, mode)
        if when == "after":
            original(path, write, mode)
            _stop(signal_file)

        def half_then_stop(f):
            buf = io.BytesIO() if "b" in mode else io.StringIO()
            write(buf)
            data = buf.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            _stop(signal_file)

        return original(path, half_then_stop, mode)

    checkpoint.atomic_write = atomic_write


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", required=True, help="basename of the write to stop at")
    parser.add_argument("--when", choices=("during", "after"), required=True)
    parser.add_argument("--nth", type=int, default=1, help="stop at the n-th write of --file")
    parser.add_argument("--signal", required=True, help="file created when stopped")
    parser.add_argument("train_net_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    install(args.file, args.when, args.nth, args.signal)
    train_args = args.train_net_args[1:] if args.train_net_args[:1] == ["--"] else args.train_net_args
    sys.argv = [os.path.join(ROOT, "tools", "train_net.py")] + train_args
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
