// The course's 1662-number keypoint vector, built from one MediaPipe Holistic result, and drawing it.
//
// Order (utils/data/keypoints.py): face 468 x (x, y, z), pose 33 x (x, y, z, visibility),
// left hand 21 x (x, y, z), right hand 21 x (x, y, z). A part MediaPipe did not find is all zeros.
// "Left" is MediaPipe's leftHandLandmarks on the unmirrored picture, as in Python (selfieMode off).

export const FACE_POINTS = 468;
export const POSE_POINTS = 33;
export const HAND_POINTS = 21;
export const KEYPOINT_DIM = FACE_POINTS * 3 + POSE_POINTS * 4 + 2 * HAND_POINTS * 3; // 1662
export const PARTS = ["face", "pose", "left_hand", "right_hand"];

// Where each part starts in the vector, how many points it has and how many numbers per point.
const LAYOUT = [
  { part: "face", field: "faceLandmarks", start: 0, points: FACE_POINTS, width: 3 },
  { part: "pose", field: "poseLandmarks", start: 1404, points: POSE_POINTS, width: 4 },
  { part: "left_hand", field: "leftHandLandmarks", start: 1536, points: HAND_POINTS, width: 3 },
  { part: "right_hand", field: "rightHandLandmarks", start: 1599, points: HAND_POINTS, width: 3 },
];

// One Holistic result -> {vector: Float32Array(1662), found: [face, pose, left hand, right hand] booleans}.
export function resultsToVector(results) {
  const vector = new Float32Array(KEYPOINT_DIM);
  const found = [];
  for (const { field, start, points, width } of LAYOUT) {
    const landmarks = results[field];
    // refineFaceLandmarks would add 10 iris points after the 468: only the first `points` are kept
    const present = Boolean(landmarks && landmarks.length >= points);
    found.push(present);
    if (!present) continue;
    for (let i = 0; i < points; i++) {
      const p = landmarks[i];
      const at = start + i * width;
      vector[at] = p.x;
      vector[at + 1] = p.y;
      vector[at + 2] = p.z;
      if (width === 4) vector[at + 3] = p.visibility ?? 0;
    }
  }
  return { vector, found };
}

// Bones to draw (MediaPipe's topology, as in utils/data/keypoints.py).
const POSE_CONNECTIONS = [
  [0, 1], [0, 4], [1, 2], [2, 3], [3, 7], [4, 5], [5, 6], [6, 8], [9, 10], [11, 12], [11, 13], [11, 23],
  [12, 14], [12, 24], [13, 15], [14, 16], [15, 17], [15, 19], [15, 21], [16, 18], [16, 20], [16, 22],
  [17, 19], [18, 20], [23, 24], [23, 25], [24, 26], [25, 27], [26, 28], [27, 29], [27, 31], [28, 30],
  [28, 32], [29, 31], [30, 32],
];
const HAND_CONNECTIONS = [
  [0, 1], [0, 5], [0, 17], [1, 2], [2, 3], [3, 4], [5, 6], [5, 9], [6, 7], [7, 8], [9, 10], [9, 13],
  [10, 11], [11, 12], [13, 14], [13, 17], [14, 15], [15, 16], [17, 18], [18, 19], [19, 20],
];
// Colours of utils/data/keypoints.py's PART_COLORS.
const COLORS = {
  face: "rgb(0,170,170)", pose: "rgb(40,90,230)", left_hand: "rgb(230,60,40)", right_hand: "rgb(40,170,60)",
};

// Draw one frame's vector over a canvas of the picture's size: face as dots, pose and hands as bones.
export function drawVector(context, vector, width, height) {
  const scale = Math.max(1, Math.round(Math.min(width, height) / 240));
  context.lineWidth = scale * 1.5;
  for (const { part, start, points, width: step } of LAYOUT) {
    const x = (i) => vector[start + i * step] * width;
    const y = (i) => vector[start + i * step + 1] * height;
    let any = false;
    for (let i = 0; i < points * step && !any; i++) any = vector[start + i] !== 0;
    if (!any) continue;
    context.strokeStyle = context.fillStyle = COLORS[part];
    if (part === "face") {
      for (let i = 0; i < points; i += 2) context.fillRect(x(i) - scale / 2, y(i) - scale / 2, scale, scale);
      continue;
    }
    const bones = part === "pose" ? POSE_CONNECTIONS.filter(([a]) => a >= 11) : HAND_CONNECTIONS;
    context.beginPath();
    for (const [a, b] of bones) {
      context.moveTo(x(a), y(a));
      context.lineTo(x(b), y(b));
    }
    context.stroke();
    for (let i = part === "pose" ? 11 : 0; i < points; i++) {
      context.fillRect(x(i) - scale, y(i) - scale, 2 * scale, 2 * scale);
    }
  }
}
