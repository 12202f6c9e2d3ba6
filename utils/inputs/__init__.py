"""Stage 2, inputs: how a stored clip becomes what a model takes.

``spec`` (the :class:`~utils.inputs.spec.InputSpec` of a model and the one function that prepares its inputs),
``preprocessing`` (keypoint normalisation, mirroring, hand angles, augmentation, in NumPy) and
``tf_preprocessing`` (the same steps in TensorFlow, for the exported model).
"""
