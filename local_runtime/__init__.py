"""The product on one machine: a local `tritonserver` from the `nvidia-pytriton` wheel
(`triton_server`, `triton-launch`), children tied to this process (`tether`), and `gateway up`,
which builds the CPU twins and runs Triton and the gateway together (`up`).

The top layer: it uses the gateway and the engine builder; neither imports it.
"""
