"""Restoration metrics, one family per module; :mod:`avrestore.metrics.clip` scores a clip.

fidelity: PSNR (:mod:`avrestore.quality`), :mod:`~.ssim` (SSIM, MS-SSIM), Y channel
(:mod:`~.color`); mouth: :mod:`~.mouth` (mouth PSNR, LMD); :mod:`~.identity`;
temporal: :mod:`~.temporal` (warping error); no-reference: :mod:`~.niqe`; learned:
:mod:`~.lpips`, :mod:`~.sync` with :mod:`~.syncnet_model`. Learned metrics load weights only
from paths the user gives, and are ``None`` without them.
"""
