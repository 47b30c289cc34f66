"""Distributed runs: citizens partitioned by whole regions, one partition per worker.

``socialcredit run --backend ray --workers K`` runs each partition in a Ray actor,
exchanges neighbours' state (halo exchange) before the steps that read it and
merges the outputs; results are bit-identical to the single-process run for any K.
Ray is an optional extra (``pip install socialcredit[distributed]``): nothing in
the core imports this package, and this package imports Ray only when a Ray run starts.
"""

from socialcredit.distributed.partition import check_supported, split_regions

__all__ = ["check_supported", "split_regions"]
