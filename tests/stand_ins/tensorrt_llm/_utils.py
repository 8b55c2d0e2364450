"""`get_sm_version`: upstream reads torch.cuda.get_device_properties(0); here the stand-in
GPU's compute capability (TRTLLM_STAND_IN_SM), with CUDA's error when there is none."""

import os


def get_sm_version() -> int:
    sm = os.environ.get("TRTLLM_STAND_IN_SM", "")
    if not sm.isdigit():
        raise RuntimeError("Found no NVIDIA driver on your system.")
    return int(sm)
