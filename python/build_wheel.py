"""build_wheel.py: writes the sqlite-bytepiece wheel (make python) from the
package in python/sqlite_bytepiece and a built bytepiece.so, with nothing
but the standard library, so that it builds offline.

A wheel is a zip of the package's files and a NAME-VERSION.dist-info folder
(METADATA, WHEEL, RECORD with every file's SHA-256). Its tag says where it
installs: the extension is loaded by SQLite, not imported by Python, so it
depends on no Python version or ABI ("py3-none"), only on the platform. The
platform tag is manylinux_X_Y_ARCH (PEP 600: runs on glibc X.Y or later)
when the library needs only libraries that policy allows (libc, libm,
libpthread, libdl, zlib) and glibc symbols no newer than X.Y, read from the
library itself with readelf; otherwise the plain linux_ARCH, which installs
only on a machine like the one that built it.

    python3 build_wheel.py --version V --library bytepiece.so --out DIR [--license FILE...]
"""
import argparse
import base64
import hashlib
import os
import platform
import re
import subprocess
import sys
import zipfile

NAME = "sqlite-bytepiece"
PACKAGE = "sqlite_bytepiece"
HERE = os.path.dirname(os.path.abspath(__file__))
# Libraries the manylinux policies allow a wheel to need from the system.
MANYLINUX_LIBRARIES = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2",
                       "librt.so.1", "libz.so.1"}


def platform_tag(library):
    """manylinux_X_Y_ARCH when the library qualifies (see the header), else linux_ARCH."""
    arch = platform.machine()
    dynamic = subprocess.run(["readelf", "-dW", library], check=True, capture_output=True, text=True).stdout
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
    needed = {n for n in needed if not n.startswith("ld-linux")}
    symbols = subprocess.run(["readelf", "--dyn-syms", "-W", library], check=True,
                             capture_output=True, text=True).stdout
    versions = [tuple(int(p) for p in v.split(".")) for v in re.findall(r"@GLIBC_([0-9.]+)", symbols)]
    if needed <= MANYLINUX_LIBRARIES and versions:
        major, minor = max(versions)[:2]
        return f"manylinux_{major}_{minor}_{arch}"
    return f"linux_{arch}"


def record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True)
    parser.add_argument("--library", required=True, help="the built bytepiece.so")
    parser.add_argument("--out", required=True, help="the folder for the .whl")
    parser.add_argument("--license", action="append", default=[], help="a licence file to include")
    args = parser.parse_args()

    tag = "py3-none-" + platform_tag(args.library)
    dist_info = f"{PACKAGE}-{args.version}.dist-info"
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        description = f.read()
    metadata = "\n".join([
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {args.version}",
        "Summary: The BytePiece tokenizer as a SQLite extension: encode, count, search and train in SQL",
        "Home-page: https://github.com/bojone/bytepiece",
        "License: Apache-2.0",
        "Classifier: License :: OSI Approved :: Apache Software License",
        "Classifier: Operating System :: POSIX :: Linux",
        "Classifier: Programming Language :: C",
        "Classifier: Topic :: Database",
        "Classifier: Topic :: Text Processing :: Linguistic",
        "Requires-Python: >=3.7",
        *[f"License-File: {os.path.basename(p)}" for p in args.license],
        "Description-Content-Type: text/markdown",
        "",
        description,
    ])
    wheel = "\n".join(["Wheel-Version: 1.0", "Generator: sqlite-bytepiece build_wheel.py",
                       "Root-Is-Purelib: false", f"Tag: {tag}", ""])

    files = []  # (path in the wheel, bytes, unix mode)
    package_dir = os.path.join(HERE, PACKAGE)
    for name in sorted(os.listdir(package_dir)):
        if name.endswith(".py"):
            with open(os.path.join(package_dir, name), "rb") as f:
                files.append((f"{PACKAGE}/{name}", f.read(), 0o644))
    files.append((f"{PACKAGE}/_version.py",
                  f'"""The extension\'s version, written by build_wheel.py from src/bytepiece.h."""\n'
                  f'__version__ = "{args.version}"\n'.encode(), 0o644))
    files.append((f"{PACKAGE}/py.typed", b"", 0o644))
    with open(args.library, "rb") as f:
        files.append((f"{PACKAGE}/bytepiece.so", f.read(), 0o755))
    for path in args.license:
        with open(path, "rb") as f:
            files.append((f"{dist_info}/{os.path.basename(path)}", f.read(), 0o644))
    files.append((f"{dist_info}/METADATA", metadata.encode(), 0o644))
    files.append((f"{dist_info}/WHEEL", wheel.encode(), 0o644))
    files.append((f"{dist_info}/top_level.txt", f"{PACKAGE}\n".encode(), 0o644))
    record = "\n".join([record_line(p, d) for p, d, _ in files] + [f"{dist_info}/RECORD,,", ""])
    files.append((f"{dist_info}/RECORD", record.encode(), 0o644))

    os.makedirs(args.out, exist_ok=True)
    target = os.path.join(args.out, f"{PACKAGE}-{args.version}-{tag}.whl")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data, mode in files:
            # A fixed date: the same inputs give the same wheel.
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    print(target)


if __name__ == "__main__":
    sys.exit(main())
