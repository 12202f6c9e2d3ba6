"""The embedded "synthetic signs" dataset: a procedural signer performing 10 motions, rendered to video.

The ten classes are named after the ASL signs of the original project (``SIGNS``), and each motion is
*inspired* by its sign (see ``SIGN_DESCRIPTIONS``), but these are synthetic stand-ins, **not real ASL**:
a model trained here learns our cartoon motions, not sign language. The point is a dataset that is made
offline in a minute, has the exact structure of real data, and is hard enough to be worth modelling.

Each clip is

* a video (``T`` frames, RGB, default 30 x 128 x 128) of a simple figure drawn with OpenCV: torso, head,
  face features, arms, and hands with fingers, on a plain / gradient / textured background, and
* its keypoints in the 1662 MediaPipe Holistic layout of :mod:`utils.data.keypoints` (face mesh 468, pose 33
  with visibility, left hand 21, right hand 21; normalised image coordinates), together with which parts
  a detector "found" in each frame. "Left" is the person's left, which is on the image's right.

The generator is made of steps, one module each, in the order they run:

* :mod:`.signers` - who signs: the shared face mesh and each :class:`Signer`'s persistent identity
  (proportions, framing, colours, left- or right-handedness, personal speed, amplitude, where they touch);
* :mod:`.hands` - hand shapes (finger curls, spread, thumb) turned into 21 hand points;
* :mod:`.motion` - skeleton motion: :func:`simulate_keypoints` moves the skeleton through one sign,
  :func:`simulate_detection` adds what a real detector does (jitter, missed hands);
* :mod:`.render` - rendering videos: :func:`render_keypoints` draws any 1662 sequence, and
  :func:`generate_clip` chains motion, drawing and detection into one :class:`SyntheticClip`;
* :mod:`.dataset` - dataset writing: :func:`make_dataset` writes a folder of videos, keypoints and a manifest.

Variation (all seeded): each signer has a persistent identity; each clip adds position, scale, rotation,
time warp, start offset, amplitude, sensor noise, keypoint jitter and missed hands, scaled by ``difficulty``
(0 = clean, 1 = default, 2 = hard).

The names below are the generator's public interface: ``from utils.data import synthetic`` then
``synthetic.make_dataset(...)``, ``synthetic.generate_clip(...)``, and so on.
"""
from utils.data.synthetic.dataset import GENERATOR_VERSION, make_dataset
from utils.data.synthetic.motion import (
                                         DEFAULT_NUM_FRAMES,
                                         MOTIONS,
                                         SIGN_DESCRIPTIONS,
                                         SIGNS,
                                         simulate_detection,
                                         simulate_keypoints,
)
from utils.data.synthetic.render import (
                                         DEFAULT_IMAGE_SIZE,
                                         SyntheticClip,
                                         contact_sheet,
                                         generate_clip,
                                         render_keypoints,
)
from utils.data.synthetic.signers import Signer, face_template, make_signers

__all__ = ["DEFAULT_IMAGE_SIZE", "DEFAULT_NUM_FRAMES", "GENERATOR_VERSION", "MOTIONS", "SIGNS",
           "SIGN_DESCRIPTIONS", "Signer", "SyntheticClip", "contact_sheet", "face_template", "generate_clip",
           "make_dataset", "make_signers", "render_keypoints", "simulate_detection", "simulate_keypoints"]
