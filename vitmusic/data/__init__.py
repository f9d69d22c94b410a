"""URMP layout, clip manifests, splits, video/audio readers and the synthetic URMP-style benchmark."""
