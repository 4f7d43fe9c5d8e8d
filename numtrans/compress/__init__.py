"""Model compression: knowledge distillation and post-training quantization.

distillation_loss(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5)
teacher_logits_cached(forward, inputs, cache="teacher.safetensors")
quantize(model, bits=8, group_size=None, skip=())  -> a new model with QuantizedLinear layers
save_quantized(model, dir) / load_quantized(cls, dir)
int8_matmul(a, b)  exact int8 x int8 -> int32 GEMM (native AVX-512 VNNI / AVX2, NumPy fallback)
"""

from .distillation import distillation_loss, soft_target_loss, teacher_logits_cached
from .int8 import int8_isas, int8_matmul, native_int8_available
from .quantize import QuantizedLinear, load_quantized, quantize, save_quantized

__all__ = [
    "QuantizedLinear",
    "distillation_loss",
    "int8_isas",
    "int8_matmul",
    "load_quantized",
    "native_int8_available",
    "quantize",
    "save_quantized",
    "soft_target_loss",
    "teacher_logits_cached",
]
