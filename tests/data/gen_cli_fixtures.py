#!/usr/bin/python3
"""Writes tests/data/blobs3.csv, the training fixture of tests/cli_train.sh (run
from the repository root: /usr/bin/python3 tests/data/gen_cli_fixtures.py).

Three classes of 50 examples each in 4 dimensions, iris-like: each class is a
Gaussian blob (per-feature std 0.6) around its own centre; classes 1 and 2
overlap a little, so a good classifier gets most but not all right. The class
index is the third column ("species"), so the default target (the last column)
is a real-valued feature. Columns have different scales (feature d is in the
hundreds) so that standardization matters.

It also prints the training accuracy of a nearest-class-mean classifier on
standardized inputs, an independent yardstick for the tests' thresholds.
"""
import random

CENTRES = [(5.0, 3.4, 1.5, 0.2), (5.9, 2.8, 4.2, 1.3), (6.6, 3.0, 5.4, 2.0)]
SCALE = (1.0, 1.0, 1.0, 100.0)  # feature d is in the hundreds

rng = random.Random(20240611)
rows = []
for c, centre in enumerate(CENTRES):
    for _ in range(50):
        rows.append((c, [round((m + rng.gauss(0.0, 0.6)) * s, 3) for m, s in zip(centre, SCALE)]))
rng.shuffle(rows)

with open("tests/data/blobs3.csv", "w") as f:
    f.write("a,b,species,c,d\n")
    for c, x in rows:
        f.write(f"{x[0]},{x[1]},{c},{x[2]},{x[3]}\n")

# nearest class mean on standardized features
n = len(rows)
mean = [sum(x[j] for _, x in rows) / n for j in range(4)]
std = [(sum((x[j] - mean[j]) ** 2 for _, x in rows) / n) ** 0.5 for j in range(4)]
z = [(c, [(x[j] - mean[j]) / std[j] for j in range(4)]) for c, x in rows]
cm = [[sum(v[j] for k, v in z if k == c) / 50 for j in range(4)] for c in range(3)]
right = sum(
    c == min(range(3), key=lambda k: sum((v[j] - cm[k][j]) ** 2 for j in range(4))) for c, v in z)
print(f"nearest class mean: {right}/{n} = {right / n:.3f}")
