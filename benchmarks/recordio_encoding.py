"""recordIO-protobuf encoding speed: the numpy bulk writer against one protobuf message per record.

FM training rows shaped like ML-20M: a user one-hot and an item one-hot (feature_dim 165,237), and a
variant with three category one-hots more (about 5 nonzeros). The bulk writer (`recsys.recordio`) encodes
all rows; the naive loop (one `Record` per row, filled as SageMaker SDK v2 does, `SerializeToString`,
framed) runs on the first rows until its time budget is spent. Both run in the same invocation, each in a
fresh process pinned to one core, and the naive bytes are checked against the bulk writer's. The reader
(`read_sparse_records`, through the message classes) is timed on a prefix too. Prints one JSON object.

    python benchmarks/recordio_encoding.py [--records N] [--naive-seconds S]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import scipy.sparse as sp
from _common import machine, run_measured

USERS, ITEMS, CATEGORIES = 138_493, 26_744, 20  # ML-20M users and items, MovieLens genres


def fm_rows(records: int, categories: bool, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray, int]:
    """(rows, labels, feature_dim): user one-hot, item one-hot and optionally 3 distinct category columns."""
    rng = np.random.default_rng(seed)
    columns = [rng.integers(0, USERS, records), USERS + rng.integers(0, ITEMS, records)]
    feature_dim = USERS + ITEMS
    if categories:
        picks = np.argsort(rng.random((records, CATEGORIES)), axis=1)[:, :3]  # 3 distinct per row
        columns += [feature_dim + np.sort(picks, axis=1)[:, k] for k in range(3)]
        feature_dim += CATEGORIES
    indices = np.stack(columns, axis=1).ravel()
    per_row = len(columns)
    indptr = np.arange(0, per_row * records + 1, per_row)
    data = np.ones(indices.size, dtype=np.float32)
    if categories:
        data.reshape(records, per_row)[:, 2:] = 1 / 3  # a row's genres share one unit of weight
    labels = rng.integers(1, 11, records).astype(np.float32) / 2  # half-star ratings
    rows = sp.csr_matrix((data, indices, indptr), shape=(records, feature_dim))
    return rows, labels, feature_dim


SETUP = """
import hashlib, io, sys
sys.path.insert(0, "benchmarks")
from recordio_encoding import fm_rows
rows, labels, feature_dim = fm_rows({records}, {categories})

class Sink:
    '''Counts and hashes what is written, so that only encoding is timed (no growing buffer).'''
    def __init__(self):
        self.bytes = 0
        self.digest = hashlib.sha256()
    def write(self, data):
        self.bytes += len(data)
        self.digest.update(data)
        return len(data)
"""

FAST = (
    SETUP
    + """
from recsys.recordio import write_sparse_records
sink = Sink()
start = time.perf_counter()
write_sparse_records(sink, rows, labels, feature_dim)
seconds = time.perf_counter() - start
head = io.BytesIO()
write_sparse_records(head, rows[:{prefix}], labels[:{prefix}], feature_dim)
n = rows.shape[0]
result = {{"records": n, "seconds": round(seconds, 3), "records_per_s": round(n / seconds),
          "bytes": sink.bytes, "prefix_sha256": hashlib.sha256(head.getvalue()).hexdigest()}}
"""
)

# One message per record, filled as SDK v2's write_spmatrix_to_sparse_tensor fills it, then framed.
NAIVE = (
    SETUP
    + """
import numpy as np
from recsys.recordio import frame, record_class
Record = record_class()
sink, budget, done = Sink(), {seconds}, 0
head = io.BytesIO()
start = time.perf_counter()
indptr, indices, data = rows.indptr, rows.indices, rows.data
while done < rows.shape[0] and (done < {prefix} or done % 1000 or time.perf_counter() - start < budget):
    record = Record()
    lo, hi = indptr[done], indptr[done + 1]
    tensor = record.features["values"].float32_tensor
    tensor.values.extend(data[lo:hi])
    tensor.keys.extend(indices[lo:hi].astype(np.uint64))
    tensor.shape.extend([feature_dim])
    record.label["values"].float32_tensor.values.extend([labels[done]])
    framed = frame(record.SerializeToString())
    sink.write(framed)
    if done < {prefix}:
        head.write(framed)
    done += 1
seconds = time.perf_counter() - start
result = {{"records": done, "seconds": round(seconds, 3), "records_per_s": round(done / seconds),
          "prefix_sha256": hashlib.sha256(head.getvalue()).hexdigest()}}
"""
)

READ = (
    SETUP
    + """
from recsys.recordio import read_sparse_records, write_sparse_records
buffer = io.BytesIO()
write_sparse_records(buffer, rows[:{prefix}], labels[:{prefix}], feature_dim)
buffer.seek(0)
start = time.perf_counter()
back, back_labels, dim = read_sparse_records(buffer)
seconds = time.perf_counter() - start
assert dim == feature_dim and (back != rows[:{prefix}]).nnz == 0
n = back.shape[0]
result = {{"records": n, "seconds": round(seconds, 3), "records_per_s": round(n / seconds)}}
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="rows per variant for the bulk writer")
    parser.add_argument("--naive-seconds", type=float, default=5.0, help="time budget of the naive loop")
    parser.add_argument("--read-records", type=int, default=200_000, help="rows for the reader timing")
    args = parser.parse_args()

    prefix = 10_000  # the naive loop's first rows, compared byte for byte with the bulk writer's
    variants = []
    for name, categories in (
        ("user+item (2 nonzeros)", False),
        ("user+item+3 categories (5 nonzeros)", True),
    ):
        fast = run_measured(FAST.format(records=args.records, categories=categories, prefix=prefix))
        naive = run_measured(
            NAIVE.format(
                records=args.records, categories=categories, prefix=prefix, seconds=args.naive_seconds
            )
        )
        read = run_measured(
            READ.format(records=args.read_records, categories=categories, prefix=args.read_records)
        )
        variants.append(
            {
                "rows": name,
                "bytes_per_record": round(fast["bytes"] / fast["records"], 1),
                "bulk_writer_one_core": fast,
                "naive_one_message_per_record_one_core": naive,
                "speedup": round(fast["records_per_s"] / naive["records_per_s"], 1),
                "identical_bytes_on_first_rows": fast.pop("prefix_sha256") == naive.pop("prefix_sha256"),
                "reader_one_core": read,
            }
        )
    print(
        json.dumps(
            {
                "benchmark": "recordio_encoding",
                "feature_dim": {"users": USERS, "items": ITEMS, "categories": CATEGORIES},
                "variants": variants,
                "goal": {"speedup": 5},
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
