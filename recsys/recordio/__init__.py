"""SageMaker recordIO-protobuf: one implementation for the Glue job, the local FM trainer and the tests.

- `framing`: dmlc recordIO records (magic, length, payload, padding) and `RecordIOError`.
- `schema`: the `aialgs.data.Record` messages, built at run time from the schema kept as data.
- `writer`: numpy bulk encoders, byte-identical to SageMaker SDK v2's writers; sharding.
- `reader`: back to (CSR rows, labels, feature_dim) through the message classes.
- `bulk`: the same, decoded in bulk with numpy over the raw bytes (for the trainer: ~100× faster).
"""

from recsys.recordio.bulk import (
    DecodedRecords,
    Float32Tensors,
    bulk_read_sparse_records,
    decode_records,
    records_to_csr,
)
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
    "DecodedRecords",
    "EncodedBatch",
    "Float32Tensors",
    "RecordIOError",
    "bulk_read_sparse_records",
    "decode_records",
    "dense_batches",
    "frame",
    "iter_records",
    "message_class",
    "read_records",
    "read_sparse_records",
    "record_class",
    "records_to_csr",
    "sparse_batches",
    "write_dense_records",
    "write_sharded",
    "write_sparse_records",
]
