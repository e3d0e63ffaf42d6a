"""Train a segmentation model: ``python train.py [experiment=synthetic] [key=value ...]``.

Thin wrapper around the package's training job (:func:`octseg.jobs.main`; the same job as
``octseg train ...`` from an installed package), configs in ``octseg/configs``. Under
``torchrun --nproc_per_node N train.py ...`` rank 0 picks the run folder's timestamp and shares it
with every rank before Hydra starts, so all ranks use one run folder (only rank 0 writes into it).
The timestamp goes through the rendezvous store only; the process group is created afterwards by
the training loop with ``trainer.ddp_backend`` and destroyed at its end.
"""

from octseg.jobs import main

if __name__ == "__main__":
    main("train")
