"""Our int4 kernels: an onnxruntime custom-op library that runs the bundle's own ``MatMulNBits`` bytes.

``library.py`` finds the compiled library and decides which kernel path a session uses; ``swap.py``
swaps ``MatMulNBits`` nodes for ``edge.kernels::MatMulInt4`` in a graph at load. The C++ sources are in
``src/`` (see ``src/int4.h`` for the layout and arithmetic).
"""
