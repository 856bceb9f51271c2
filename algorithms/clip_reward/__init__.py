"""Language-goal rewards from a CLIP-family model (PAPERS.md §6). See README.md.

reward.py     P(l | x) and the thresholded reward r = 1[P(goal | x) > β], with input validation  (no Ray)
models.py     CLIP models of several sizes from a CLIPConfig, the word-level tokenizer, save/load   (no Ray)
losses.py     the contrastive (CLIP) loss used for fine-tuning                                    (no Ray)
config.py     the hyperparameters, each with its paper symbol                                      (no Ray)
serve.py      the Ray Serve application hosting one model (the Ray edge)
"""
