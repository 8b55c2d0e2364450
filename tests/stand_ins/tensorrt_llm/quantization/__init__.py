"""`QuantAlgo` (quantization/mode.py): a string enum whose values are the member names;
only the members the build can meet, and the QuantMode facts `build()` checks."""

from enum import StrEnum


class QuantAlgo(StrEnum):
    W8A16 = "W8A16"
    W4A16 = "W4A16"
    FP8 = "FP8"
    FP8_PER_CHANNEL_PER_TOKEN = "FP8_PER_CHANNEL_PER_TOKEN"
    INT8 = "INT8"
    NVFP4 = "NVFP4"
    NO_QUANT = "NO_QUANT"


WEIGHT_ONLY = {QuantAlgo.W8A16, QuantAlgo.W4A16}
