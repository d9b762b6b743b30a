#!/usr/bin/python3
"""Independent safetensors writer/reader for tapegrad's checkpoint tests.

python3-safetensors is not packaged in Debian 12, so this script writes and reads
the format by hand with struct and json, following the specification
(https://huggingface.co/docs/safetensors): an 8-byte little-endian header length,
the JSON header (padded with spaces to a multiple of 8, as the reference
implementation does), then the little-endian tensor bytes. Values come from torch.

    safetensors_interop.py write OUT.safetensors
        writes the fixture tests/data/torch_written.safetensors (committed).
    safetensors_interop.py read FILE.safetensors
        checks a file written by tests/check_io.c (test_save_python_reads) and
        exits 0 when every value matches, 1 with a message otherwise; the
        CRC-32 that tapegrad stores per tensor ("crc32:NAME" in the metadata) is
        recomputed with zlib and must match.

The values on both sides follow the formulas in the docstrings of expected_*().
"""
import json
import math
import struct
import sys
import zlib

import numpy as np
import torch

DTYPES = {"F32": (torch.float32, np.dtype("<f4")), "F64": (torch.float64, np.dtype("<f8"))}


def expected_fixture():
    """What `write` stores; tests/check_io.c (test_load_torch_fixture) checks it:
    "layers.0.weight" F32 (3,4): (i - 5) / 8 for the flat index i;
    "layers.0.bias"   F64 (3):   pi, -e, 1e-300;
    "sin"             F64 (2,3): sin(i);
    "scale"           F32 ():    -2.5;
    "empty"           F32 (0,2): no elements."""
    return {
        "layers.0.weight": ((torch.arange(12, dtype=torch.float32) - 5) / 8).reshape(3, 4),
        "layers.0.bias": torch.tensor([math.pi, -math.e, 1e-300], dtype=torch.float64),
        "sin": torch.sin(torch.arange(6, dtype=torch.float64)).reshape(2, 3),
        "scale": torch.tensor(-2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 2, dtype=torch.float32),
    }


def expected_from_c():
    """What tests/check_io.c writes before calling `read`:
    "a" F32 (2,3): i / 2 - 1;  "b" F64 (4): 1 / (i + 1);  "c" F64 (): 42;
    metadata {"epoch": "3", "note": "tapegrad \\"test\\""}."""
    return ({
        "a": (torch.arange(6, dtype=torch.float32) / 2 - 1).reshape(2, 3),
        "b": 1 / (torch.arange(4, dtype=torch.float64) + 1),
        "c": torch.tensor(42.0, dtype=torch.float64),
    }, {"epoch": "3", "note": 'tapegrad "test"'})


def write(path):
    tensors = expected_fixture()
    # Data in a different order than the header's keys: offsets must be honoured.
    order = ["sin", "layers.0.weight", "empty", "scale", "layers.0.bias"]
    header, blobs, pos = {"__metadata__": {"format": "pt", "source": "torch"}}, [], 0
    for name in order:
        t = tensors[name]
        dt = "F32" if t.dtype == torch.float32 else "F64"
        raw = t.numpy().astype(DTYPES[dt][1]).tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    h = json.dumps(dict(sorted(header.items())), separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read(path):
    """Parses `path` strictly and returns ({name: tensor}, metadata)."""
    buf = open(path, "rb").read()
    (n,) = struct.unpack("<Q", buf[:8])
    assert 8 + n <= len(buf), "header length beyond the file"
    header = json.loads(buf[8:8 + n].decode())
    data = buf[8 + n:]
    meta = header.pop("__metadata__", {})
    out, spans = {}, []
    for name, e in header.items():
        tdt, ndt = DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        count = math.prod(e["shape"])
        assert end - b == count * ndt.itemsize, f"{name}: span does not match shape"
        spans.append((b, end))
        arr = np.frombuffer(data[b:end], dtype=ndt).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
        assert out[name].dtype == tdt
    pos = 0
    for b, end in sorted(spans):
        assert b == pos, "gap or overlap in data_offsets"
        pos = end
    assert pos == len(data), "trailing bytes or truncated data"
    # tapegrad's checksums: "crc32:NAME" is zlib's CRC-32 of NAME's bytes, 8 hex digits
    for key in [k for k in meta if k.startswith("crc32:")]:
        name = key[len("crc32:"):]
        assert name in header, f"checksum {key} for no tensor"
        b, end = header[name]["data_offsets"]
        got = "%08x" % zlib.crc32(data[b:end])
        assert meta.pop(key) == got, f"{name}: checksum {meta.get(key)} != {got}"
    return out, meta


def check_from_c(path):
    got, meta = read(path)
    want, want_meta = expected_from_c()
    errors = []
    if sorted(got) != sorted(want):
        errors.append(f"names {sorted(got)} != {sorted(want)}")
    for name, t in want.items():
        if name in got:
            g = got[name]
            if g.dtype != t.dtype or g.shape != t.shape or not torch.equal(g, t):
                errors.append(f"{name}: got {g!r}, want {t!r}")
    if meta != want_meta:
        errors.append(f"metadata {meta} != {want_meta}")
    if errors:
        print("safetensors_interop: " + "; ".join(errors))
        return 1
    print(f"safetensors_interop: {path}: {len(got)} tensors and metadata match")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "read"):
        sys.exit(__doc__)
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        sys.exit(check_from_c(sys.argv[2]))
