"""Batch inference: ``python infer.py checkpoint=CKPT input=IN output=OUT`` (docs/inference.md).

Thin wrapper around the package's inference job (:func:`octseg.jobs.main`; the same job as
``octseg infer ...`` from an installed package). Sharded with
``torchrun --nproc_per_node N infer.py ...``. Exit status 0 when every pullback is done, 1 when
any failed (see OUT/manifest.json), 2 on a usage/checkpoint error.
"""

from octseg.jobs import main

if __name__ == "__main__":
    main("infer")
