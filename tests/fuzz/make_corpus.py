#!/usr/bin/env python3
"""tests/fuzz/make_corpus.py - writes the seed corpora in tests/fuzz/corpus/.

Built with Python's struct, json and gzip only (independently of tapegrad), so the
seeds are what the formats say, not what our writer happens to produce. Run it
from anywhere; it rewrites the seed files it names and leaves other files (the
regression inputs added for fixed findings) alone.
"""
import gzip
import json
import os
import struct
import zlib

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(kind, name, data):
    os.makedirs(os.path.join(HERE, kind), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(HERE, kind, name), "wb") as f:
        f.write(data)


def safetensors(entries, meta=None, pad=True):
    """entries: list of (name, dtype, shape, raw bytes)."""
    hdr, pos, blob = {}, 0, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape, raw in entries:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [pos, pos + len(raw)]}
        pos += len(raw)
        blob += raw
    j = json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        j += b" " * (-len(j) % 8)
    return struct.pack("<Q", len(j)) + j + blob


def header_only(j):
    return struct.pack("<Q", len(j)) + j


W = ("w", "F32", [2, 3], struct.pack("<6f", 1, 2, 3, 4, 5, 6))
B = ("b", "F32", [3], struct.pack("<3f", -1, 0, 1))
S = ("s", "F64", [], struct.pack("<d", 0.25))

st = "safetensors"
put(st, "valid-model", safetensors([W, B, S], {"epoch": "3"}))
put(st, "valid-other", safetensors([("x", "F64", [2, 0], b""), ("y", "F32", [1], b"\0\0\x80?")]))
put(st, "valid-empty", safetensors([]))
put(st, "mismatch-shape", safetensors([("w", "F32", [3, 2], W[3]), B, S]))
put(st, "mismatch-dtype", safetensors([W, B, ("s", "F32", [], b"\0\0\x80>")]))
full = safetensors([W, B, S])
put(st, "truncated", full[:-5])
put(st, "padded", full + b"\0" * 8)
flip = bytearray(full)
flip[20] ^= 0x04
put(st, "bitflip", bytes(flip))
put(st, "short", b"\x05\0\0")
put(st, "hlen-huge", struct.pack("<Q", 1 << 62) + b"{}")
put(st, "bad-json", header_only(b'{"w": {"dtype": "F32", "shape": [2,'))
put(st, "bad-dtype", safetensors([("w", "BF16", [3], b"\0" * 6)]))
put(st, "overlap", header_only(
    b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
    b'"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}') + b"\0" * 6)
put(st, "gap", header_only(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}') + b"\0" * 8)
put(st, "rank-9", header_only(
    b'{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}') + b"\0" * 4)
put(st, "shape-overflow", header_only(
    b'{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'))
put(st, "dup-name", header_only(
    b'{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},'
    b'"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}') + b"\0" * 8)
put(st, "meta-nonstring", header_only(b'{"__metadata__":{"k":1}}'))
# tapegrad's checksums: "crc32:NAME" is zlib's CRC-32 of the tensor's bytes
CRC = {"crc32:" + e[0]: "%08x" % zlib.crc32(e[3]) for e in (W, B, S)}
put(st, "valid-crc", safetensors([W, B, S], dict(CRC, epoch="3")))
put(st, "crc-wrong", safetensors([W, B, S], dict(CRC, **{"crc32:b": "00000000"})))
put(st, "crc-nohex", safetensors([W, B, S], dict(CRC, **{"crc32:w": "12345g78"})))
put(st, "crc-noname", safetensors([W, B, S], dict(CRC, **{"crc32:zz": "00000000"})))

# IDX: magic 0 0 type rank, big-endian u32 dims, big-endian elements
def idx(t, dims, payload):
    return bytes([0, 0, t, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload

ix = "idx"
labels = idx(0x08, [5], bytes([0, 1, 2, 9, 255]))
put(ix, "u8-labels", labels)
put(ix, "u8-images", idx(0x08, [2, 2, 3], bytes(range(12))))
put(ix, "i8", idx(0x09, [3], bytes([0x80, 0x7F, 0xFF])))
put(ix, "i16", idx(0x0B, [2], struct.pack(">2h", -300, 300)))
put(ix, "i32", idx(0x0C, [1, 2], struct.pack(">2i", -70000, 70000)))
put(ix, "f32", idx(0x0D, [2], struct.pack(">2f", 1.5, -2.0)))
put(ix, "f64", idx(0x0E, [1], struct.pack(">d", 3.25)))
put(ix, "zero-dim", idx(0x08, [0, 4], b""))
put(ix, "labels.gz", gzip.compress(labels, mtime=0))
put(ix, "truncated", idx(0x0C, [4], b"\0" * 9))
put(ix, "trailing", idx(0x08, [2], b"\1\2\3"))
put(ix, "bad-magic", b"\1\0\x08\1\0\0\0\1\0")
put(ix, "bad-type", idx(0x0A, [1], b"\0"))
put(ix, "rank-0", bytes([0, 0, 8, 0]))
put(ix, "huge-dims", idx(0x0E, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], b""))
put(ix, "corrupt.gz", gzip.compress(labels, mtime=0)[:-6] + b"\xff" * 6)

# CSV: the first byte selects the options (see csv.c); 0x00 = ',' with header,
# target_index -2; 0x60 = defaults (last column); 0x08 no header; 0x10 target "y"
cs = "csv"
put(cs, "header-last", b"\x60" + b"a,b,y\n1,2,3\n4.5,-6e2,0\n")
put(cs, "named-target", b"\x10" + b"y,x1,x2\r\n1, 2 ,3\r\n\r\n0,0,0\r\n")
put(cs, "no-header", b"\x68" + b"1;2\n3;4\n")
put(cs, "semicolon", b"\x62" + b"a;y\n1;2\n")
put(cs, "quoted-header", b"\x10" + b'"x","y"\n1,2\n')
put(cs, "bad-field", b"\x60" + b"a,y\n1,abc\n")
put(cs, "ragged", b"\x60" + b"a,b,y\n1,2\n")
put(cs, "nan", b"\x60" + b"a,y\nnan,1\n")
put(cs, "one-column", b"\x60" + b"y\n1\n")
put(cs, "no-rows", b"\x60" + b"a,y\n\n")
put(cs, "nul", b"\x60" + b"a,y\n1\0,2\n")
put(cs, "big-f32", b"\x60" + b"a,y\n1e300,1\n")

ex = "expr"
for i, s in enumerate([
        "(sigmoid(w*x + b) - t)^2", "x^2 + 3*x - 1", "-x^-2", "2^3^2", "x**0.5",
        "log(x) + sqrt(y)", "max(x, y) - min(x, 2)", "leaky_relu(x, 0.1)",
        "pow(x, y) / (y - 2)", "exp(tanh(relu(softplus(sin(cos(abs(neg(x))))))))",
        "1e308*1e308", ".5 + 1.e3", "((((x))))", "x +", "f(x)", "sqrt(1, 2)",
        "leaky_relu(x, y)", "1.2.3", "x)", "((x)", "3e", "-" * 70 + "x", "(" * 70 + "x" + ")" * 70]):
    put(ex, "e%02d" % i, s)
