#!/usr/bin/env python3
"""tests/make_crafted.py - writes the crafted files of tests/data/crafted/.

The files are committed (small, byte-identical when regenerated); run this from
anywhere after changing it: python3 tests/make_crafted.py. They are written with
Python's struct, json and gzip only, independently of tapegrad, and each one
breaks (or probes) one rule of its format. tests/check_io.c and
tests/check_io_dataset.c read them through DATA "crafted/..." and say what each
one must give.
"""
import gzip
import json
import math
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "crafted")


def put(name, data):
    os.makedirs(OUT, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


# ---- IDX: big-endian, magic 0 0 type rank, u32 dims, elements ----

def idx(type_code, fmt, dims, values):
    head = struct.pack(">BBBB", 0, 0, type_code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    return head + struct.pack(f">{len(values)}{fmt}", *values)


put("f64-inf.idx", idx(0x0E, "d", [3], [0.5, math.inf, 2.0]))        # element 1 is infinite
put("f64-nan.idx", idx(0x0E, "d", [2, 2], [1, 2, 3, math.nan]))      # element 3 at (1,1) is NaN
put("f32-nan.idx.gz", gz(idx(0x0D, "f", [2], [math.nan, 1.0])))       # element 0, gzipped
put("f64-huge.idx", idx(0x0E, "d", [3], [1.0, -2.0, 1e300]))          # fits F64, not F32
# a "bomb": 2,000,000,000 u8 declared, 1 MiB of zeros really there (1 KiB of gzip);
# the reader must refuse it from the header, before inflating anything
put("bomb.idx.gz", gz(idx(0x08, "B", [2000000000], []) + bytes(1 << 20)))
labels = idx(0x08, "B", [4], [3, 1, 4, 1])
put("labels.idx.gz", gz(labels))                                      # valid
put("garbage-after.idx.gz", gz(labels) + b"garbage!")                 # bytes after the member
put("zeros-after.idx.gz", gz(labels) + bytes(16))                     # zero padding, same rule
put("no-trailer.idx.gz", gz(labels)[:-8])                             # CRC and length cut off
put("two-members.idx.gz", gz(labels[:5]) + gz(labels[5:]))            # valid: concatenated


# ---- CSV ----

put("bom.csv", b"\xef\xbb\xbfx,y\n1,2\n3,4\n")           # "x" is the first column's name
put("cr-only.csv", b"a,b\r1,2\r3,4\r")                    # old Mac line ends: 2 rows
put("hex.csv", b"a,b\n1,2\n0x10,3\n")                     # hexadecimal is no CSV number
put("hex-float.csv", b"a,b\n1,2\n0x1p3,3\n")


# ---- safetensors: u64 LE header length, JSON header, data ----

def header_only(j):
    """A file whose header is the raw JSON bytes j (no data)."""
    j += b" " * (-len(j) % 8)
    return struct.pack("<Q", len(j)) + j


ONE = b'{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
F1 = struct.pack("<f", 1.0)


def one_tensor(name_json, meta_json=None):
    """A file with one F32 tensor (1) = 1.0 named by the JSON string name_json."""
    meta = b'"__metadata__":' + meta_json + b"," if meta_json else b""
    return header_only(b"{" + meta + name_json + b":" + ONE + b"}") + F1


put("meta-empty-key.safetensors", one_tensor(b'"w"', b'{"":"x"}'))
put("meta-nul-key.safetensors", one_tensor(b'"w"', b'{"a\\u0000b":"x"}'))
put("meta-nul-value.safetensors", one_tensor(b'"w"', b'{"k":"x\\u0000y"}'))
put("name-nul.safetensors", one_tensor(b'"w\\u0000x"'))          # would match "w"
put("name-latin1.safetensors", one_tensor(b'"caf\xe9"'))         # not UTF-8
put("name-overlong.safetensors", one_tensor(b'"a\xc0\xafb"'))    # overlong "/"
put("meta-surrogate.safetensors", one_tensor(b'"w"', b'{"k":"\xed\xa0\x80"}'))  # UTF-8 of U+D800
put("meta-above-max.safetensors", one_tensor(b'"w"', b'{"k":"\xf4\x90\x80\x80"}'))  # > U+10FFFF
put("name-control.safetensors", one_tensor(b'"w\x01"'))          # a raw control character
put("name-escaped-backslash.safetensors", one_tensor(b'"w\\\\u0000"'))  # valid: w\u0000 literally
put("name-utf8.safetensors", one_tensor('"poids.\u00e9\u4e2d\U0001f600"'.encode()))  # valid


def zero_size(first_dim):
    h = {"z": {"dtype": "F32", "shape": [first_dim, 0], "data_offsets": [0, 0]}}
    return header_only(json.dumps(h, separators=(",", ":")).encode())


put("shape-2p53-minus-1.safetensors", zero_size(2**53 - 1))   # valid, exact
put("shape-2p53.safetensors", zero_size(2**53))               # 2^53 + 1 parses to it too
