"""Post-production: new assets made from stored ones (music onto video, cut-downs, loudness
masters, channel renditions), through the same pipeline as every generation."""
