"""Stage 5, evaluation: how good a model is on people it never saw.

``crossval`` (folds by signer, one run per fold, intervals), ``evaluate`` (re-scoring saved runs, reading
results back, comparing runs), ``probe`` (does a branch recognise the signer instead of the sign?).
"""
