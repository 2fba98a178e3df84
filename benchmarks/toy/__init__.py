"""The detection benchmark's library (``python -m benchmarks.detection`` runs it): a small GPT-2
pretrained on MATH-500 + GSM8K and distilled on s1K members along a memorisation curve, one job a
module:

- ``split``: the S1 split of s1K and the truncated answers;
- ``analysis``: memorisation and the ROC figures of each checkpoint;
- ``report``: the markdown and the plots;
- ``pipeline``: pretraining, distillation, scoring every checkpoint, the summary.
"""
