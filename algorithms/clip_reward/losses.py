"""The contrastive (CLIP) loss for fine-tuning on rendered (frame, caption) pairs. Pure torch.

Rendered captions repeat: a batch of 128 frames holds at most 13 distinct captions. The standard CLIP loss
(Radford et al. 2021, eq. in their Figure 3) treats the i-th caption as the only match of the i-th image, so
two frames with the same caption would be pushed apart as "negatives". Here each distinct caption appears
once, and the text → image direction spreads its target evenly over every image with that caption:

    logits[i, u]   = s · ⟨f(x_i), g(l_u)⟩ / (|f(x_i)| |g(l_u)|)          s = exp(logit_scale) = 1/τ
    L_image        = mean_i  CE( logits[i, :],  c(i) )                    c(i): image i's caption
    L_text         = mean_u  CE( logits[:, u],  uniform over {i : c(i) = u} )
    L              = (L_image + L_text) / 2

With all captions distinct this is exactly the standard CLIP loss (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def grouped_clip_loss(
    image_embeds: torch.Tensor, text_embeds: torch.Tensor, caption_index: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """image_embeds [B, D], text_embeds [U, D] (one row per distinct caption), caption_index long [B] in 0..U-1,
    logit_scale: the log of 1/τ (a scalar, CLIPModel.logit_scale)."""
    if image_embeds.ndim != 2 or text_embeds.ndim != 2 or image_embeds.shape[1] != text_embeds.shape[1]:
        raise ValueError(f"embeddings must be [B, D] and [U, D], got {tuple(image_embeds.shape)}, {tuple(text_embeds.shape)}")
    if caption_index.shape != (image_embeds.shape[0],):
        raise ValueError(f"caption_index must be [B={image_embeds.shape[0]}], got {tuple(caption_index.shape)}")
    image_embeds = F.normalize(image_embeds, dim=-1)
    text_embeds = F.normalize(text_embeds, dim=-1)
    logits = logit_scale.exp() * image_embeds @ text_embeds.T  # [B, U]
    image_loss = F.cross_entropy(logits, caption_index)
    matches = F.one_hot(caption_index, num_classes=text_embeds.shape[0]).T.float()  # [U, B]
    present = matches.sum(1) > 0  # a caption row with no image in the batch has no target
    targets = matches[present] / matches[present].sum(1, keepdim=True)
    text_loss = -(targets * F.log_softmax(logits.T[present], dim=-1)).sum(1).mean()
    return (image_loss + text_loss) / 2
