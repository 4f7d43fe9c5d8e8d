"""Model compression: knowledge distillation and post-training quantization.

distillation_loss(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5)
teacher_logits_cached(forward, inputs, cache="teacher.safetensors")
quantize(model, bits=8, group_size=None, skip=(), embeddings=True) -> a new, quantized model
save_quantized(model, dir) / load_quantized(cls, dir)
hidden_state_loss / attention_kl_loss   TinyBERT's and MiniLM's intermediate-layer terms
student_from_teacher(teacher, num_layers)   DistilBERT's student (the recipe: recipes.distill)
quantization_errors(model, run) / format_errors / most_sensitive   per-layer error analysis
int8_matmul(a, b)  exact int8 x int8 -> int32 GEMM (native AVX-512 VNNI / AVX2, NumPy fallback)
pack_int8(b) / int8_matmul_packed(a, packed) / int8_linear(x, packed, w_scale, bias)
    the same GEMM with B packed once in the kernel's layout, and the fused quantized layer
"""

from .analysis import LayerError, format_errors, most_sensitive, quantization_errors
from .distillation import distillation_loss, soft_target_loss, teacher_logits_cached
from .int8 import (
    PackedInt8,
    int8_isas,
    int8_linear,
    int8_matmul,
    int8_matmul_packed,
    native_int8_available,
    pack_int8,
    quantize_rows_int8,
)
from .layers import QuantizedEmbedding, QuantizedLinear
from .quantize import load_quantized, quantize, save_quantized
from .student import kept_layers, student_from_teacher
from .transfer import attention_kl_loss, hidden_state_loss, layer_map

__all__ = [
    "LayerError",
    "PackedInt8",
    "QuantizedEmbedding",
    "QuantizedLinear",
    "attention_kl_loss",
    "distillation_loss",
    "format_errors",
    "int8_isas",
    "int8_linear",
    "int8_matmul",
    "int8_matmul_packed",
    "hidden_state_loss",
    "kept_layers",
    "layer_map",
    "load_quantized",
    "most_sensitive",
    "native_int8_available",
    "pack_int8",
    "quantization_errors",
    "quantize",
    "quantize_rows_int8",
    "save_quantized",
    "soft_target_loss",
    "student_from_teacher",
    "teacher_logits_cached",
]
