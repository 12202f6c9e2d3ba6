"""Stage 6, serving: using a trained model on new clips.

``predict`` (one answer for a video file), ``webcam`` (the live loop), ``export`` (SavedModel / TFLite with
the input preparation inside).
"""
