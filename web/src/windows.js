// Windows of frames for the model, sampled as the course samples training clips (utils/serving/predict.py).

// `count` indices spread evenly over `available` frames, first and last included, rounded half up
// (utils/data/video.py sample_frame_indices). Fewer frames than `count`: some repeat.
export function sampleFrameIndices(available, count) {
  const indices = [];
  for (let i = 0; i < count; i++) {
    const position = count === 1 ? 0 : (i * (available - 1)) / (count - 1);
    indices.push(Math.floor(position + 0.5));
  }
  return indices;
}

// First frame of each window of `window` frames, `stride` apart; the last window ends at the last frame.
export function windowStarts(numFrames, window, stride) {
  if (numFrames <= window) return [0];
  const starts = [];
  for (let s = 0; s <= numFrames - window; s += stride) starts.push(s);
  if (starts[starts.length - 1] !== numFrames - window) starts.push(numFrames - window);
  return starts;
}

// The model input (1, clipFrames, 1662) of frames[start .. start+window-1], sampled to clipFrames.
export function windowInput(vectors, start, window, clipFrames, dim) {
  const span = Math.min(window, vectors.length - start);
  const input = new Float32Array(clipFrames * dim);
  sampleFrameIndices(span, clipFrames).forEach((index, row) => input.set(vectors[start + index], row * dim));
  return input;
}

// The most probable k classes of a probability array, best first: [[label, probability], ...].
export function topK(probabilities, classes, k = 3) {
  return Array.from(probabilities, (p, i) => [classes[i], p]).sort((a, b) => b[1] - a[1]).slice(0, k);
}

// A live sliding window: frames (time in seconds, vector) of the last `seconds`, and the running mean of
// the window probabilities since the start (the clip's answer, as `python -m utils predict` gives it).
export class LiveWindow {
  constructor(seconds, clipFrames) {
    this.seconds = seconds;
    this.clipFrames = clipFrames;
    this.frames = [];
    this.reset();
  }

  reset() {
    this.frames = [];
    this.sum = null;
    this.windows = 0;
    this.startTime = null;
    this.lastWindowTime = -Infinity;
  }

  // Add one frame; returns true when a new window is due: once the window has had time to fill, then every
  // quarter of a window (predict's stride). On a slow machine a window may hold few frames: they repeat.
  add(time, vector) {
    if (this.frames.length && time < this.frames[this.frames.length - 1].time) this.reset(); // a video looped
    if (this.startTime === null) this.startTime = time;
    this.frames.push({ time, vector });
    while (this.frames[0].time <= time - this.seconds) this.frames.shift();
    const filled = time - this.startTime >= this.seconds * 0.9;
    const due = filled && time - this.lastWindowTime >= this.seconds / 4;
    if (due) this.lastWindowTime = time;
    return due;
  }

  // The model input of the current window: its frames sampled evenly to clipFrames.
  input(dim) {
    return windowInput(this.frames.map((f) => f.vector), 0, this.frames.length, this.clipFrames, dim);
  }

  // Count one window's probabilities into the running mean and return that mean.
  addProbabilities(probabilities) {
    if (!this.sum) this.sum = new Float64Array(probabilities.length);
    probabilities.forEach((p, i) => (this.sum[i] += p));
    this.windows += 1;
    return Array.from(this.sum, (s) => s / this.windows);
  }
}
