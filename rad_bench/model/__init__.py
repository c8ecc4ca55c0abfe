"""The shared video DiT (dit, layers), its diffusion (noise levels, loss, sampler) and the size presets."""
