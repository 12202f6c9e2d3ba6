// Sign recognition in the browser: camera or video file -> MediaPipe Holistic -> 1662-number vectors ->
// a sliding window sampled like the course's training clips -> the exported model (LiteRT.js) -> top signs.
// Everything is served from this folder; nothing is fetched from elsewhere.
import { KEYPOINT_DIM, drawVector, resultsToVector } from "./keypoints.js";
import { KeypointModel } from "./model.js";
import { LiveWindow, topK, windowInput, windowStarts } from "./windows.js";

const BASE = new URL(".", document.baseURI);
const $ = (id) => document.getElementById(id);
const video = $("video");
const canvas = $("canvas");
const context = canvas.getContext("2d");
const shrinkCanvas = document.createElement("canvas");

// Timings of the last frames, for the frames-per-second line (and the benchmark, through window.signPage).
class Timings {
  constructor(size = 60) {
    this.size = size;
    this.values = [];
  }
  add(value) {
    this.values.push(value);
    if (this.values.length > this.size) this.values.shift();
  }
  mean() {
    return this.values.length ? this.values.reduce((a, b) => a + b, 0) / this.values.length : NaN;
  }
}

const state = {
  info: null, model: null, holistic: null, window: null, latest: null, running: false, busy: false,
  source: "none", lastVideoTime: -1,
  mediapipeMs: new Timings(), modelMs: new Timings(), frameTimes: new Timings(),
  allMediapipeMs: [], allModelMs: [], current: null, answer: null, frames: 0,
  found: [0, 0, 0, 0], // frames in which MediaPipe found the face, the pose, the left hand, the right hand
};

function status(text) {
  $("status").textContent = text;
}

// ----------------------------------------------------------------------------- start-up
async function loadHolistic() {
  // holistic.js (loaded by index.html) defines window.Holistic; its wasm and models are in holistic/
  const holistic = new window.Holistic({ locateFile: (file) => new URL(`holistic/${file}`, BASE).href });
  holistic.setOptions({
    modelComplexity: 1, smoothLandmarks: true, enableSegmentation: false, refineFaceLandmarks: false,
    minDetectionConfidence: 0.5, minTrackingConfidence: 0.5, selfieMode: false,
  });
  holistic.onResults((results) => (state.latest = results));
  await holistic.initialize();
  return holistic;
}

async function start() {
  status("loading the model and MediaPipe…");
  const response = await fetch(new URL("model/export.json", BASE));
  if (!response.ok) throw new Error(`model/export.json: ${response.status}; build the page with --web`);
  state.info = await response.json();
  if (state.info.inputs.length !== 1 || state.info.inputs[0].name !== "keypoints") {
    throw new Error("this page runs keypoint models only (export.json lists other inputs)");
  }
  state.model = await KeypointModel.load(state.info, BASE);
  state.holistic = await loadHolistic();
  // the window spans what a training clip spanned: its seconds, else its frames at the training videos' rate
  // (30 frames per second when export.json does not know it)
  const seconds = state.info.window.seconds || state.info.window.frames / (state.info.window.fps || 30);
  state.window = new LiveWindow(seconds, state.info.clip_frames);
  $("about").textContent = `${state.info.model} model, ${state.info.classes.length} signs; window ` +
    `${seconds.toFixed(2)} s sampled to ${state.info.clip_frames} frames`;
  window.signPage.ready = true;
  const source = new URLSearchParams(location.search).get("source") ?? "camera";
  if (source === "camera") await useCamera();
  else status("ready: choose the camera or a video file");
}

// ----------------------------------------------------------------------------- sources
async function useCamera() {
  try {
    const constraints = { video: { width: 640, height: 480 }, audio: false };
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    video.srcObject = stream;
    video.loop = false;
    await play("camera");
  } catch (error) {
    status(`no camera (${error.name}): choose a video file instead`);
  }
}

async function useFile(file) {
  if (video.srcObject) video.srcObject.getTracks().forEach((track) => track.stop());
  video.srcObject = null;
  video.src = URL.createObjectURL(file);
  video.loop = true;
  await play("file");
}

async function play(source) {
  state.source = source;
  resetAnswer();
  await video.play();
  status(source === "camera" ? "camera on: sign!" : "playing the video file");
  if (!state.running) {
    state.running = true;
    requestAnimationFrame(loop);
  }
}

function resetAnswer() {
  state.window?.reset();
  state.current = state.answer = state.answerProbabilities = null;
  state.found = [0, 0, 0, 0];
  state.frames = 0;
  state.lastVideoTime = -1;
  showTop($("current"), null);
  showTop($("answer"), null);
}

// ----------------------------------------------------------------------------- one frame
// The picture MediaPipe sees: the frame shrunk so that its longer side is at most export.json's
// mediapipe_size (0 = full resolution), as `python -m utils predict` does.
function mediapipeImage(source, width, height) {
  const limit = state.info.mediapipe_size || 0;
  if (!limit || Math.max(width, height) <= limit) return source;
  const factor = limit / Math.max(width, height);
  shrinkCanvas.width = Math.max(1, Math.round(width * factor));
  shrinkCanvas.height = Math.max(1, Math.round(height * factor));
  const shrink = shrinkCanvas.getContext("2d");
  shrink.imageSmoothingQuality = "high";
  shrink.drawImage(source, 0, 0, shrinkCanvas.width, shrinkCanvas.height);
  return shrinkCanvas;
}

// MediaPipe on one picture: {vector, found, ms}. `timestampMs` (optional) is the frame's time for
// MediaPipe's landmark smoothing; by default MediaPipe uses the wall clock.
async function keypointsOf(source, width, height, timestampMs) {
  const image = mediapipeImage(source, width, height);
  const started = performance.now();
  state.latest = null;
  // holistic.send() stamps frames with the wall clock; the solution's inner graph (`h`) takes a timestamp,
  // which lets a benchmark feed frames at the video's own pace whatever the speed of this machine.
  if (timestampMs !== undefined && state.holistic.h?.send) {
    await state.holistic.h.send({ image }, timestampMs);
  }
  else await state.holistic.send({ image });
  const ms = performance.now() - started;
  const { vector, found } = resultsToVector(state.latest ?? {});
  return { vector, found, ms };
}

async function classify(input) {
  const started = performance.now();
  const probabilities = await state.model.probabilities(input);
  const ms = performance.now() - started;
  state.modelMs.add(ms);
  state.allModelMs.push(ms);
  return probabilities;
}

async function loop() {
  if (state.paused) return;
  if (!state.busy && video.readyState >= 2 && video.currentTime !== state.lastVideoTime) {
    state.busy = true;
    try {
      await step();
    } catch (error) {
      status(`error: ${error.message}`);
      throw error;
    } finally {
      state.busy = false;
    }
  }
  requestAnimationFrame(loop);
}

async function step() {
  state.lastVideoTime = video.currentTime;
  const width = video.videoWidth, height = video.videoHeight;
  const { vector, found, ms } = await keypointsOf(video, width, height);
  found.forEach((part, i) => (state.found[i] += part ? 1 : 0));
  state.mediapipeMs.add(ms);
  state.allMediapipeMs.push(ms);
  state.frameTimes.add(performance.now());
  state.frames += 1;
  // the picture and the skeleton
  if (canvas.width !== width || canvas.height !== height) [canvas.width, canvas.height] = [width, height];
  context.drawImage(video, 0, 0, width, height);
  drawVector(context, vector, width, height);
  // the window: a camera's time is the clock, a file's time is its own (it restarts when the file loops)
  const time = state.source === "camera" ? performance.now() / 1000 : video.currentTime;
  if (state.window.add(time, vector)) {
    const probabilities = await classify(state.window.input(KEYPOINT_DIM));
    const mean = state.window.addProbabilities(probabilities);
    state.current = topK(probabilities, state.info.classes);
    state.answer = topK(mean, state.info.classes);
    state.answerProbabilities = mean;
    showTop($("current"), state.current);
    showTop($("answer"), state.answer, state.window.windows);
  }
  showSpeed();
}

// ----------------------------------------------------------------------------- display
function showTop(element, top, windows) {
  element.replaceChildren();
  element.dataset.label = top ? top[0][0] : "";
  element.dataset.windows = windows ?? 0;
  for (const [label, probability] of top ?? []) {
    const row = document.createElement("div");
    row.className = "row";
    row.innerHTML =
      `<span class="label"></span><span class="bar"><span></span></span><span class="p"></span>`;
    row.querySelector(".label").textContent = label;
    row.querySelector(".bar span").style.width = `${(100 * probability).toFixed(1)}%`;
    row.querySelector(".p").textContent = probability.toFixed(2);
    element.appendChild(row);
  }
  if (windows) {
    const note = document.createElement("div");
    note.className = "note";
    note.textContent = `mean of ${windows} window${windows > 1 ? "s" : ""}`;
    element.appendChild(note);
  }
}

function showSpeed() {
  const times = state.frameTimes.values;
  const fps = times.length > 1 ? (1000 * (times.length - 1)) / (times[times.length - 1] - times[0]) : NaN;
  $("speed").textContent = `${fps.toFixed(1)} frames/s` +
    ` · MediaPipe ${state.mediapipeMs.mean().toFixed(0)} ms/frame` +
    ` · model ${state.modelMs.mean().toFixed(1)} ms/window`;
  window.signPage.fps = fps;
}

// ----------------------------------------------------------------------------- for tests and benchmarks
// window.signPage lets a script feed exact frames and read what the page found, with the page's own code.
window.signPage = {
  ready: false,
  fps: NaN,
  state,
  // The 1662 numbers MediaPipe gives for one RGBA frame (Uint8ClampedArray, width x height x 4).
  async keypoints(rgba, width, height, timestampMs) {
    const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(rgba), width, height));
    const { vector, found, ms } = await keypointsOf(bitmap, width, height, timestampMs);
    bitmap.close();
    return { vector: Array.from(vector), found, ms };
  },
  // The same for a PNG picture (base64), decoded by the browser without colour changes.
  async keypointsOfPng(base64, timestampMs) {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }),
      { colorSpaceConversion: "none", premultiplyAlpha: "none" });
    const { vector, found, ms } = await keypointsOf(bitmap, bitmap.width, bitmap.height, timestampMs);
    bitmap.close();
    return { vector: Array.from(vector), found, ms };
  },
  // A clip's answer from its per-frame vectors, as `python -m utils predict` reaches it: windows spanning
  // what a training clip spanned at the clip's fps, a quarter window apart, and the mean of their
  // probabilities.
  async clipAnswer(vectors, fps) {
    const info = state.info;
    const frames = vectors.map((v) => Float32Array.from(v));
    const window = info.window.seconds && fps > 0 ? Math.max(1, Math.round(info.window.seconds * fps))
      : info.window.frames || info.clip_frames;
    const stride = Math.max(1, Math.floor(window / 4));
    const sum = new Float64Array(info.classes.length);
    const starts = windowStarts(frames.length, window, stride);
    for (const start of starts) {
      const input = windowInput(frames, start, window, info.clip_frames, KEYPOINT_DIM);
      const probabilities = await classify(input);
      probabilities.forEach((p, i) => (sum[i] += p));
    }
    const mean = Array.from(sum, (s) => s / starts.length);
    return { top: topK(mean, info.classes), probabilities: mean, windows: starts.length, window, stride };
  },
  // Stop processing frames (after the frame in hand), e.g. to take a still picture of the page.
  async pause() {
    state.paused = true;
    while (state.busy) await new Promise((resolve) => setTimeout(resolve, 50));
  },
  // Reset MediaPipe's tracking between clips.
  resetTracking() {
    state.holistic.reset();
  },
};

// ----------------------------------------------------------------------------- buttons
$("camera").addEventListener("click", () => useCamera());
$("file").addEventListener("change", (event) => event.target.files[0] && useFile(event.target.files[0]));
$("reset").addEventListener("click", () => resetAnswer());

start().catch((error) => {
  status(`could not start: ${error.message}`);
  console.error(error);
});
