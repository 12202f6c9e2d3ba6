"""Stage 1, data: where clips come from and what is stored of them.

``video`` (reading, sampling, writing clips), ``keypoints`` (MediaPipe Holistic and the 1662-number layout),
``synthetic`` (the course's own procedural signers), ``datasets`` (finding clips in each source layout,
downloads), ``features`` (extracting a dataset into one features file), ``store`` (the same, larger than
memory), ``splits`` (train / validation / test by signer), ``figures`` (pictures of the data), ``record``
(recording your own signs with a camera) and ``recordings`` (the folder it writes; merging dataset folders).
"""
