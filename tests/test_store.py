"""The features store: round trip, lazy memory-mapped reading, clip-by-clip writing, atomic publish,
training."""
from __future__ import annotations

import json
import os
import weakref
from pathlib import Path

import numpy as np
import pytest

from utils import paths
from utils.data import store
from utils.data.features import FeatureSet, load_features, save_features
from utils.data.keypoints import KEYPOINT_DIM
from utils.errors import FeatureFileError

NUM_CLIPS, NUM_FRAMES, IMAGE_SIZE, CROP = 6, 4, 8, 4


def small_features(num_clips: int = NUM_CLIPS) -> FeatureSet:
    """Random clips with every optional array (frames, detected, hand crops, source lengths)."""
    rng = np.random.default_rng(0)
    return FeatureSet(
        keypoints=rng.normal(size=(num_clips, NUM_FRAMES, KEYPOINT_DIM)).astype(np.float32),
        frames=rng.integers(0, 256, (num_clips, NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8),
        labels=np.arange(num_clips, dtype=np.int64) % 2, classes=["hello", "thanks"],
        groups=np.array([f"s{i % 3}" for i in range(num_clips)]), split=np.full(num_clips, ""),
        paths=np.array([f"clip_{i}.mp4" for i in range(num_clips)]),
        detected=rng.random((num_clips, NUM_FRAMES, 4)) > 0.5, meta={"kind": "test", "ünïcode": [1, 2]},
        hand_crops=rng.integers(0, 256, (num_clips, NUM_FRAMES, 2, CROP, CROP, 3), dtype=np.uint8),
        source_frames=np.arange(num_clips, dtype=np.int64) + 10,
        source_fps=np.full(num_clips, 25.0, np.float32))


ARRAYS = ("keypoints", "frames", "detected", "hand_crops", "labels", "groups", "split", "paths",
          "source_frames", "source_fps")


def test_round_trip_keeps_every_array_dtype_and_the_json(tmp_path: Path) -> None:
    original = small_features()
    folder = save_features(tmp_path / "clips", original)
    loaded = load_features(folder)
    for name in ARRAYS:
        expected, got = getattr(original, name), np.asarray(getattr(loaded, name))
        assert got.dtype == np.asarray(expected).dtype and np.array_equal(got, expected), name
    assert loaded.classes == original.classes and loaded.meta == original.meta
    index = json.loads((folder / store.INDEX_FILE).read_text(encoding="utf-8"))
    assert (index["format"], index["version"], index["num_clips"]) == (
        store.STORE_FORMAT,
        store.STORE_VERSION,
        NUM_CLIPS,
    )
    assert index["arrays"]["frames"] == {"shape": [NUM_CLIPS, NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3],
                                         "dtype": "|u1", "per": "clip"}
    assert index["arrays"]["labels"]["per"] == "column" and index["classes"] == ["hello", "thanks"]
    # every array is a plain uncompressed .npy that NumPy itself memory-maps
    mapped = np.load(folder / "keypoints.npy", mmap_mode="r")
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped[2], original.keypoints[2])


def test_npz_still_reads_and_writes_and_matches_the_store(tmp_path: Path) -> None:
    original = small_features()
    from_npz = load_features(save_features(tmp_path / "clips.npz", original))
    from_store = load_features(save_features(tmp_path / "clips", original))
    assert (tmp_path / "clips.npz").is_file() and (tmp_path / "clips").is_dir()
    assert isinstance(from_npz.keypoints, np.ndarray) and isinstance(from_store.keypoints, store.MappedArray)
    for name in ARRAYS:
        assert np.array_equal(np.asarray(getattr(from_npz, name)),
                              np.asarray(getattr(from_store, name))), name


def test_loading_opens_no_clip_array_and_indexing_copies_only_the_rows(tmp_path: Path) -> None:
    original = small_features()
    loaded = load_features(save_features(tmp_path / "clips", original))
    arrays = [loaded.keypoints, loaded.frames, loaded.hand_crops, loaded.detected]
    assert all(isinstance(a, store.MappedArray) and not a.opened for a in arrays)
    # from store.json only
    assert loaded.frames.shape == original.frames.shape and loaded.image_size == IMAGE_SIZE
    rows = loaded.frames[np.array([4, 1])]
    assert type(rows) is np.ndarray and np.array_equal(rows, original.frames[[4, 1]])
    assert loaded.frames.opened and not loaded.keypoints.opened


def test_writing_holds_one_clip_at_a_time(tmp_path: Path) -> None:
    original, alive = small_features(), []

    def make(row: int) -> dict[str, np.ndarray]:
        clip = {"keypoints": original.keypoints[row].copy(), "frames": original.frames[row].copy()}
        alive.append(weakref.ref(clip["frames"]))
        return clip

    def clips():
        # (a clip holds no reference cycle: freed as soon as nothing refers to it)
        for row in range(NUM_CLIPS):
            assert sum(ref() is not None for ref in alive) == 0, (
                f"clip {row - 1} still held when clip {row} is made"
            )
            yield make(row)

    columns = {"labels": original.labels, "groups": original.groups}
    folder = store.write_store(tmp_path / "clips", clips(), NUM_CLIPS, columns, original.classes, {})
    assert len(alive) == NUM_CLIPS
    assert np.array_equal(np.asarray(load_features(folder).frames), original.frames)


def test_a_store_may_end_with_fewer_clips_and_drops_arrays_some_clip_lacks(tmp_path: Path) -> None:
    original = small_features()
    clips = [{"keypoints": original.keypoints[i], **({"frames": original.frames[i]} if i != 1 else {})}
             for i in range(3)]
    columns = {"labels": original.labels[:3]}
    folder = store.write_store(tmp_path / "clips", iter(clips), NUM_CLIPS, columns, original.classes, {})
    loaded = load_features(folder)
    assert len(loaded) == 3 and loaded.frames is None and not (folder / "frames.npy").exists()
    # header rewritten: 3 rows
    assert np.array_equal(np.load(folder / "keypoints.npy"), original.keypoints[:3])


def test_an_interrupted_write_leaves_no_half_store_and_keeps_the_old_one(tmp_path: Path) -> None:
    original = small_features()
    folder = save_features(tmp_path / "clips", original)

    def clips():
        for row in range(3):
            yield {"keypoints": original.keypoints[row] + 1}
        raise KeyboardInterrupt  # Ctrl+C in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        store.write_store(folder, clips(), NUM_CLIPS, {"labels": original.labels}, original.classes, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips"]  # no temporary folder left
    # the old store, whole
    assert np.array_equal(np.asarray(load_features(folder).keypoints), original.keypoints)
    with pytest.raises(KeyboardInterrupt):
        store.write_store(tmp_path / "new", clips(), NUM_CLIPS, {"labels": original.labels}, original.classes,
                          {})
    assert not (tmp_path / "new").exists()


def test_a_killed_writers_temporary_folder_is_removed_by_the_next_write(tmp_path: Path) -> None:
    stale = tmp_path / ".clips.999999999.partial"  # no process has this id
    stale.mkdir()
    (stale / "keypoints.npy").write_bytes(b"half")
    save_features(tmp_path / "clips", small_features())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips"]


def test_store_errors_name_the_folder(tmp_path: Path) -> None:
    folder = save_features(tmp_path / "clips", small_features())
    index = json.loads((folder / store.INDEX_FILE).read_text())
    index["arrays"]["frames"]["dtype"] = "<f4"  # the file holds uint8
    (folder / store.INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(FeatureFileError, match="frames.npy"):
        load_features(folder).frames[0]
    (folder / store.INDEX_FILE).unlink()
    with pytest.raises(FeatureFileError, match="not a features store"):
        load_features(folder)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    with pytest.raises(FeatureFileError, match="not a features store"):
        save_features(tmp_path / "notes", small_features())
    bad = small_features()
    bad.keypoints[2, 1, 5] = np.nan
    with pytest.raises(FeatureFileError, match="clip 2"):
        save_features(tmp_path / "nan", bad)
    assert not (tmp_path / "nan").exists()


def test_extract_writes_a_store_equal_to_the_npz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_features import extract, make_synthetic

    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    source = make_synthetic(tmp_path / "synthetic")
    from_npz = load_features(extract(source, tmp_path / "f.npz", hand_size=4).path)
    report = extract(source, tmp_path / "f_store", hand_size=4)  # every clip from the cache now
    from_store = load_features(report.path)
    assert report.path == tmp_path / "f_store" and report.num_clips == len(from_npz) == 4
    assert isinstance(from_store.frames, store.MappedArray)
    for name in ARRAYS:
        assert np.array_equal(np.asarray(getattr(from_npz, name)),
                              np.asarray(getattr(from_store, name))), name
    assert {k: v for k, v in from_store.meta.items() if k != "created"} == \
        {k: v for k, v in from_npz.meta.items() if k != "created"}


@pytest.mark.parametrize("model_name", ["lstm", pytest.param("fused", marks=pytest.mark.slow)])
def test_training_from_the_store_gives_the_weights_of_training_from_the_npz(
        model_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_training import tiny_config, tiny_features
    from utils.evaluation.evaluate import evaluate_saved
    from utils.training import loop as training
    from utils.training.runs import load_run

    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "runs")
    weights, accuracies = [], []
    from_store = load_features(save_features(tmp_path / "tiny_store", tiny_features()))
    for name, features in (("npz", str(save_features(tmp_path / "tiny.npz", tiny_features()))),
                           ("store", from_store)):
        metrics = training.train(features, model_name, tiny_config(model_name, epochs=3),
                                 out_dir=tmp_path / name, seed=1, verbose=0, measure_speed=False)
        weights.append(load_run(tmp_path / name)[0].get_weights())
        accuracies.append((metrics["val_accuracy"], metrics["test_accuracy"], metrics["history"]))
    assert accuracies[0] == accuracies[1]
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    # lstm: never read
    assert from_store.keypoints.opened and from_store.frames.opened == (model_name == "fused")
    # evaluate --features FOLDER
    rescored = evaluate_saved(tmp_path / "store", tmp_path / "tiny_store", split="test")
    assert rescored["accuracy"] == accuracies[1][1]


def test_training_batches_read_only_their_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from utils.inputs.spec import InputSpec, clip_inputs
    from utils.training import loop as training

    original = small_features()
    features = load_features(save_features(tmp_path / "clips", original))
    spec = InputSpec(num_frames=NUM_FRAMES, image_size=IMAGE_SIZE, inputs=("keypoints", "frames"))
    rows = np.array([0, 2, 5])
    read = []
    real_getitem = store.MappedArray.__getitem__
    monkeypatch.setattr(store.MappedArray, "__getitem__",
                        lambda self, key: read.append(np.asarray(key).tolist()) or real_getitem(self, key))
    batches = training.TrainingBatches({"keypoints": features.keypoints, "frames": features.frames},
                                       original.labels[rows], spec, {}, 2, seed=0, rows=rows)
    inputs, labels = batches[0]
    assert len(read) == 2 and read[0] == read[1] and len(read[0]) == 2 and set(read[0]) <= set(rows.tolist())
    expected = clip_inputs({"keypoints": original.keypoints[read[0]], "frames": original.frames[read[0]]},
                           spec)
    assert all(np.array_equal(inputs[name], expected[name]) for name in expected)
    assert np.array_equal(labels, original.labels[read[0]])
    assert os.path.getsize(tmp_path / "clips" / "frames.npy") > original.frames.nbytes  # uncompressed on disk


def test_scale_benchmark_writes_and_reads_a_tiled_store_in_fresh_processes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import store_scale as scale_benchmark

    base = save_features(tmp_path / "base.npz", small_features())
    monkeypatch.setattr(scale_benchmark, "base_features_path", lambda: base)
    rows = scale_benchmark.run(sizes=(15,), workdir=tmp_path, tasks=("write", "read"))
    assert [(row["clips"], row["task"]) for row in rows] == [(15, "write"), (15, "read")]
    assert all(row["peak_rss_mb"] > 10 for row in rows) and rows[1]["clips"] == 15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.npz"]  # the stores are deleted
    # copy 1 of clip 2: jittered keypoints, shifted frames
    clip = scale_benchmark.tiled_clip(small_features(), 8)
    assert np.array_equal(clip["frames"], np.roll(small_features().frames[2], -2, axis=2))
    assert 0 < np.abs(clip["keypoints"] - small_features().keypoints[2]).max() < 0.05
