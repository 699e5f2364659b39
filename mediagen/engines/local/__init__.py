"""Open-weight models on this machine's own hardware (MusicGen, Stable Audio Open, Riffusion,
SD-Turbo, Wan), behind the same Engine protocol as every other provider.

Nothing in this package imports torch, transformers or diffusers at module level: the base install
lists these models (as unavailable, with the fix) without the `local` extra, and `import
mediagen.app` never pulls torch. A family module imports its libraries inside `load` and `run`.
"""
