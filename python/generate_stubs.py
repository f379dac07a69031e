"""Generates the `mercator.v1` gRPC stubs from the repository's .proto files.

    python python/generate_stubs.py            # rewrite python/src/mercator/v1/
    python python/generate_stubs.py --check    # fail if the committed stubs are stale

Needs grpcio-tools (the version in python/requirements-dev.txt: the stubs it writes
check the protobuf runtime at import, so the package pins protobuf to match).
"""

import filecmp
import glob
import os
import shutil
import sys
import tempfile

from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "proto", "proto")
OUT = os.path.join(HERE, "src")


def generate(out):
    sources = sorted(glob.glob(os.path.join(PROTO, "mercator", "v1", "*.proto")))
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = ["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}",
            f"--grpc_python_out={out}", *[os.path.relpath(s, PROTO) for s in sources]]
    cwd = os.getcwd()
    os.chdir(PROTO)
    try:
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
    finally:
        os.chdir(cwd)


def main():
    if "--check" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            generate(tmp)
            fresh = os.path.join(tmp, "mercator", "v1")
            names = sorted(n for n in os.listdir(fresh) if n.endswith((".py", ".pyi")))
            committed = os.path.join(OUT, "mercator", "v1")
            match, mismatch, errors = filecmp.cmpfiles(fresh, committed, names, shallow=False)
            if mismatch or errors:
                raise SystemExit(f"stale stubs (run python/generate_stubs.py): {mismatch + errors}")
        print(f"{len(names)} stubs are current")
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp)
        target = os.path.join(OUT, "mercator", "v1")
        for name in os.listdir(os.path.join(tmp, "mercator", "v1")):
            shutil.copy(os.path.join(tmp, "mercator", "v1", name), os.path.join(target, name))
    print("stubs written to", os.path.join(OUT, "mercator", "v1"))


if __name__ == "__main__":
    main()
