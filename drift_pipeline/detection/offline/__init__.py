"""The offline model provider: SmolLM2-135M-Instruct in-process, served to litellm as provider `offline`.

`variants` (which provider-side variant is served, shared across processes), `model` (loading the GGUF
weights, quantized copies), `generation` (prompts, batched `generate()`), `provider` (the litellm handler).
"""
