// The exported keypoint model (model.tflite from `python -m utils export`) run by LiteRT.js on the CPU
// (WebAssembly).
// Its input is raw keypoints (1, T, 1662) float32; the course's preprocessing is inside the file.
import { loadLiteRt, loadAndCompile, Tensor } from "@litertjs/core";

export class KeypointModel {
  // info: export.json; folder: where model/ and litert/ (the runtime's wasm files) are served from.
  static async load(info, base) {
    // The runtime (Emscripten) writes its own log lines ("INFO: ...", "WARNING: ...") to standard error,
    // which would show as console errors: they go to console.debug, real errors stay errors.
    self.Module = {
      print: (text) => console.log(text),
      printErr: (text) => (/^(INFO|WARNING): /.test(text) ? console.debug(text) : console.error(text)),
    };
    await loadLiteRt(new URL("litert/", base).href);
    const file = new URL(`model/${info.tflite}`, base).href;
    const compiled = await loadAndCompile(file, { accelerator: "wasm" });
    return new KeypointModel(compiled, info);
  }

  constructor(compiled, info) {
    this.compiled = compiled;
    this.info = info;
    this.shape = info.inputs[0].shape; // [1, T, 1662]
  }

  // Class probabilities (Float32Array, in info.classes order) of one window's raw keypoints
  // (T * 1662 numbers).
  async probabilities(input) {
    const tensor = new Tensor(input, this.shape);
    let outputs;
    try {
      outputs = await this.compiled.run([tensor]);
    } finally {
      tensor.delete();
    }
    const result = Float32Array.from(outputs[0].toTypedArray());
    outputs.forEach((t) => t.delete());
    return result;
  }
}
