"""SageMaker recordIO-protobuf: one implementation for the Glue job, the local FM trainer and the tests.

- `framing`: dmlc recordIO records (magic, length, payload, padding) and `RecordIOError`.
- `schema`: the `aialgs.data.Record` messages, built at run time from the schema kept as data.
- `writer`: numpy bulk encoders, byte-identical to SageMaker SDK v2's writers; sharding.
- `reader`: back to (CSR rows, labels, feature_dim) through the message classes.
"""

from recsys.recordio.framing import MAGIC, RecordIOError, frame, iter_records, read_records
from recsys.recordio.reader import read_sparse_records
from recsys.recordio.schema import message_class, record_class
from recsys.recordio.writer import (
    EncodedBatch,
    dense_batches,
    sparse_batches,
    write_dense_records,
    write_sharded,
    write_sparse_records,
)

__all__ = [
    "MAGIC",
    "EncodedBatch",
    "RecordIOError",
    "dense_batches",
    "frame",
    "iter_records",
    "message_class",
    "read_records",
    "read_sparse_records",
    "record_class",
    "sparse_batches",
    "write_dense_records",
    "write_sharded",
    "write_sparse_records",
]
