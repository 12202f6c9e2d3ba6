"""Stage 4, training: fitting a model and writing its run folder.

``loop`` (:func:`~utils.training.loop.train`: split, fit, keep the best epoch, score), ``runs`` (the run
folder: write and load), ``metrics`` (the scores a run writes), ``distribute`` (several GPUs or machines).
"""
