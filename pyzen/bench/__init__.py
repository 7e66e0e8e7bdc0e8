"""`pyzen-bench` / `python -m pyzen.bench`: validate, then time pyzen's kernels against NumPy
(and PyTorch when installed) side by side, relative to this machine's measured peaks."""
