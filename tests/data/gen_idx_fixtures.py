#!/usr/bin/python3
"""Writes the small IDX fixtures that tests/check_io.c reads (run from the
repository root: /usr/bin/python3 tests/data/gen_idx_fixtures.py). Written with
struct and gzip, independently of tapegrad's reader; the formulas are repeated in
the comments of the tests that use them.

  tiny-images-idx3-ubyte.gz  u8 (5, 3, 4): (37 * i + 11) % 256 for flat index i
  tiny-labels-idx1-ubyte.gz  u8 (5):       3, 1, 4, 1, 5
  tiny-labels-idx1-ubyte     the same, uncompressed
  tiny-i16-idx2.gz           i16 (2, 3):   -300, -1, 0, 1, 255, 32767
  tiny-f64-idx1              f64 (3):      0.1, -2.5, 1e300
"""
import gzip
import struct


def idx(type_code, fmt, dims, values):
    head = struct.pack(">BBBB", 0, 0, type_code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    return head + struct.pack(f">{len(values)}{fmt}", *values)


def gz(path, data):
    # No file name and mtime=0 keep the committed files byte-identical when regenerated.
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
        f.write(data)


d = "tests/data/"
gz(d + "tiny-images-idx3-ubyte.gz", idx(0x08, "B", (5, 3, 4), [(37 * i + 11) % 256 for i in range(60)]))
labels = idx(0x08, "B", (5,), [3, 1, 4, 1, 5])
gz(d + "tiny-labels-idx1-ubyte.gz", labels)
open(d + "tiny-labels-idx1-ubyte", "wb").write(labels)
gz(d + "tiny-i16-idx2.gz", idx(0x0B, "h", (2, 3), [-300, -1, 0, 1, 255, 32767]))
open(d + "tiny-f64-idx1", "wb").write(idx(0x0E, "d", (3,), [0.1, -2.5, 1e300]))
